"""What the agent and the collector both use, below both: strict YAML configuration files and the MQTT client.

Only ``protocol`` sits under it; neither the agent, the collector nor diagnostics is imported here.
"""
