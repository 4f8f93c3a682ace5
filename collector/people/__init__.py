"""People: users with roles (``users``), their passwords (``passwords``), API tokens (``tokens``), web
sessions (``sessions``) and what a customer's user may see (``scope``). The API and the CLI use these; every
change is audited with who made it."""

from collector.people.scope import Scope, scope_of
from collector.people.users import RANKS, Person, Role

__all__ = ["RANKS", "Person", "Role", "Scope", "scope_of"]
