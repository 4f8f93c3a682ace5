"""The broker's side of trust: each agent's own login and access rules, made and kept in step by hezo through
Mosquitto's dynamic-security plugin (docs/security-agents.md).

``acl`` says who may do what (from the wire contract, never by hand) and writes the plugin's first file;
``control`` speaks the plugin's control topic; ``dynsec`` puts, removes and reconciles agents and roles.
"""
