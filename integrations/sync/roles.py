"""The hub's roles: the groups that migration 0005 creates, by name.

The migration keeps its own copy of what each group may do, as migrations must; this
module is what code and tests refer to.
"""

HUB_ADMINS = "Администраторы хаба"
OPERATORS = "Операторы"
AUDITORS = "Аудиторы"
PERSONAL_DATA = "Доступ к персональным данным"

ROLES = (HUB_ADMINS, OPERATORS, AUDITORS)
