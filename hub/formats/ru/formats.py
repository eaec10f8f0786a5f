"""Russian dates as the sanatorium's staff write them and RDESK shows them: 01.12.2026 19:27.

Django's Russian default spells the month out ("1 декабря 2026 г. 19:27"); admin lists
read better in the short form. Everything not set here (number separators, input
formats) comes from Django's own Russian formats.
"""

DATE_FORMAT = "d.m.Y"
DATETIME_FORMAT = "d.m.Y H:i"
