"""Agents' logins and access rules at the broker, put, removed and kept in step through the control topic.

Each change takes effect at once: a new password or a removed login throws the agent's open connection out
(the plugin kicks every client of that user name), and the rules are checked on every publish and subscribe.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from collector.broker import acl
from collector.broker.control import BrokerControl
from collector.errors import CollectorError
from protocol import Topics

log = logging.getLogger(__name__)


class BrokerRefusedError(CollectorError):
    """The plugin refused a change; the message has its reason."""

    code = "broker-refused"
    status = 502


def _check(answer: dict[str, Any], *accepted: str) -> bool:
    """True if the command was done, False if it failed for one of the ``accepted`` reasons; else raise."""
    error = answer.get("error")
    if error is None:
        return True
    if error in accepted:
        return False
    raise BrokerRefusedError(f"the broker refused {answer.get('command')}: {error}")


class DynamicSecurity:
    def __init__(self, control: BrokerControl, topics: Topics) -> None:
        self._control = control
        self._topics = topics

    def _one(self, command: dict[str, Any], *accepted: str) -> bool:
        [answer] = self._control.run([command])
        return _check(answer, *accepted)

    def put_role(self, rolename: str, acls: list[acl.Acl]) -> list[str]:
        """Make role ``rolename`` hold exactly ``acls``; what was changed, in words."""
        if self._one({"command": "createRole", "rolename": rolename, "acls": acls}, "Role already exists"):
            return [f"role {rolename} created"]
        [answer] = self._control.run([{"command": "getRole", "rolename": rolename}])
        _check(answer)
        held = {acl.acl_key(rule): rule for rule in answer["data"]["role"].get("acls", [])}
        wanted = {acl.acl_key(rule): rule for rule in acls}
        commands = [
            {
                "command": "removeRoleACL",
                "rolename": rolename,
                "acltype": rule["acltype"],
                "topic": rule["topic"],
            }
            for key, rule in held.items()
            if key not in wanted
        ] + [
            {"command": "addRoleACL", "rolename": rolename, **rule}
            for key, rule in wanted.items()
            if key not in held
        ]
        if not commands:
            return []
        for answer in self._control.run(commands):
            _check(answer)
        return [f"role {rolename}: {len(commands)} rule(s) changed"]

    def put_agent(self, site: str, agent: str, password: str) -> None:
        """Give agent ``site/agent`` this password (a new login, or a new password: the old one is thrown
        out), its one client id, and its role with exactly its rules."""
        role = acl.agent_role(site, agent)
        username = acl.agent_username(site, agent)
        client_id = acl.agent_client_id(site, agent)
        self.put_role(role, acl.agent_acls(self._topics, site, agent))
        created = self._one(
            {
                "command": "createClient",
                "username": username,
                "password": password,
                "clientid": client_id,
                "textname": f"hezo agent {username}",
                "roles": [{"rolename": role}],
            },
            "Client already exists",
        )
        if created:
            log.info("broker login %s created", username)
            return
        answers = self._control.run(
            [
                {"command": "setClientPassword", "username": username, "password": password},
                {"command": "setClientId", "username": username, "clientid": client_id},
                {"command": "enableClient", "username": username},
            ]
        )
        for answer in answers:
            _check(answer)
        self._set_roles(username, {role})
        log.info("broker login %s has a new password", username)

    def _set_roles(self, username: str, roles: set[str]) -> list[str]:
        """Make login ``username`` hold exactly ``roles``, in no group (a group's roles would be more); what
        was changed. (A role given twice, the plugin answers with an "Internal error": so look first.)"""
        [answer] = self._control.run([{"command": "getClient", "username": username}])
        _check(answer)
        client = answer["data"]["client"]
        held = {role["rolename"] for role in client.get("roles", [])}
        groups = [group["groupname"] for group in client.get("groups", [])]
        commands = [
            *(
                {"command": "removeClientRole", "username": username, "rolename": r}
                for r in sorted(held - roles)
            ),
            *(
                {"command": "addClientRole", "username": username, "rolename": r}
                for r in sorted(roles - held)
            ),
            *({"command": "removeGroupClient", "username": username, "groupname": g} for g in groups),
        ]
        for reply in self._control.run(commands) if commands else []:
            _check(reply)
        return [f"login {username}: roles and groups set ({len(commands)} change(s))"] if commands else []

    def remove_agent(self, site: str, agent: str) -> bool:
        """Remove agent ``site/agent``'s login (its open connection is thrown out) and role; False if neither
        was there."""
        answers = self._control.run(
            [
                {"command": "deleteClient", "username": acl.agent_username(site, agent)},
                {"command": "deleteRole", "rolename": acl.agent_role(site, agent)},
            ]
        )
        client = _check(answers[0], "Client not found")
        role = _check(answers[1], "Role not found")
        return client or role

    def sync(self, enrolled: Iterable[tuple[str, str]], collector: str) -> tuple[list[str], list[str]]:
        """Bring the broker in step with the store: the collector's and every enrolled agent's rules as made
        here, closed default access, no login or role of an agent that is not enrolled.

        Returns what was changed, and the enrolled agents that have no login (``agents rotate`` gives one: a
        password is never kept, so it cannot be made again here).
        """
        wanted = set(enrolled)
        changes = self.put_role(acl.COLLECTOR_ROLE, acl.collector_acls(self._topics))
        changes += self.put_role(acl.ADMIN_ROLE, acl.admin_acls())
        changes += self._set_roles(collector, {acl.COLLECTOR_ROLE, acl.ADMIN_ROLE})
        answers = self._control.run(
            [
                {
                    "command": "setDefaultACLAccess",
                    "acls": [{"acltype": k, "allow": v} for k, v in acl.DEFAULT_ACCESS.items()],
                },
                {"command": "listRoles", "count": -1},
                {"command": "listClients", "count": -1},
            ]
        )
        for answer in answers:
            _check(answer)
        roles = {acl.agent_of_name(name, acl.AGENT_ROLE_PREFIX): name for name in answers[1]["data"]["roles"]}
        logins = {acl.agent_of_name(name): name for name in answers[2]["data"]["clients"]}
        roles.pop(None, None)
        logins.pop(None, None)
        logins = {owner: name for owner, name in logins.items() if name != collector}
        for owner, name in sorted(logins.items(), key=lambda item: item[1]):
            if owner not in wanted:
                self._one({"command": "deleteClient", "username": name})
                changes.append(f"login {name} removed: not enrolled")
        for owner, name in sorted(roles.items(), key=lambda item: item[1]):
            if owner not in wanted:
                self._one({"command": "deleteRole", "rolename": name})
                changes.append(f"role {name} removed: not enrolled")
        missing = []
        for site, agent in sorted(wanted):
            changes += self.put_role(acl.agent_role(site, agent), acl.agent_acls(self._topics, site, agent))
            if (site, agent) not in logins:
                missing.append(f"{site}/{agent}")
            else:
                username = acl.agent_username(site, agent)
                client_id = acl.agent_client_id(site, agent)
                self._one({"command": "setClientId", "username": username, "clientid": client_id})
                changes += self._set_roles(username, {acl.agent_role(site, agent)})
        return changes, missing
