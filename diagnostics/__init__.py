"""Service tests and log collection, usable on site by hand or remotely through the agent."""
