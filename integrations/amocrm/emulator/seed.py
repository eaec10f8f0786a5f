"""The emulated account as it starts: account, lead custom fields, pipelines and two leads.

Field ids are the production ids the hub's defaults map to, so a fresh hub talks to the
emulator without any mapping changes. The last five fields exist for validation tests.
"""

from __future__ import annotations

ACCOUNT_ID = 30000001
ACCOUNT_NAME = "Здравница (emulator)"
CURRENT_USER_ID = 8000001
# A fixed moment (2024-01-01 00:00 MSK) so seeded timestamps never change between runs.
SEEDED_AT = 1704056400

WON_STATUS_ID = 142
LOST_STATUS_ID = 143
UNSORTED_STATUS_TYPE = 1

DATETIME_SETTINGS = {
    "date_pattern": "d.m.Y H:i",
    "short_date_pattern": "d.m.Y",
    "short_time_pattern": "H:i",
    "date_formant": "d.m.Y",
    "time_format": "H:i:s",
    "timezone": "Europe/Moscow",
    "timezone_offset": "+03:00",
}

# (id, name, type, extra attributes)
CUSTOM_FIELDS = [
    (1287599, "Дата создания брони", "date_time", {}),
    (1305167, "Оплачено", "numeric", {}),
    (1305111, "ID Здравница", "text", {}),
    (1304923, "Статус брони", "text", {}),
    (1305059, "Дата заезда", "date", {}),
    (1305061, "Дата выезда", "date", {}),
    (1304335, "Гости", "textarea", {}),
    (1305107, "Номер договора", "numeric", {}),
    (1304929, "Счета", "textarea", {}),
    (1305201, "Дата рождения", "birthday", {}),
    (1305203, "Сумма МЦ", "numeric", {}),
    (
        1305301,
        "Источник",
        "select",
        {
            "code": "BOOKING_SOURCE",
            "enums": [(5001, "Сайт", "SITE"), (5002, "Телефон", "PHONE")],
        },
    ),
    (
        1305303,
        "Теги услуг",
        "multiselect",
        {"enums": [(5011, "Лечение", None), (5012, "Питание", None), (5013, "Трансфер", None)]},
    ),
    (1305305, "Постоянный гость", "checkbox", {}),
    (1305307, "Сайт", "url", {}),
    (1305309, "Итог по формуле", "numeric", {"is_computed": True}),
]

# (id, name, is_main, unsorted status id, [(status id, name, color)])
PIPELINES = [
    (
        7000000,
        "Воронка",
        True,
        7000003,
        [(7000001, "Первичный контакт", "#99ccff"), (7000002, "Переговоры", "#ffff99")],
    ),
    (
        10156066,
        "Бронирования",
        False,
        80453090,
        [
            (80453094, "Новая бронь", "#99ccff"),
            (80453096, "Заезд", "#ffcc66"),
            (80453098, "Выезд", "#87f2c0"),
        ],
    ),
    (
        10164486,
        "Медцентр",
        False,
        80512640,
        [(80512650, "Новая запись", "#99ccff"), (80512652, "Оплачено", "#87f2c0")],
    ),
]

LEADS = [
    {"id": 23392663, "name": "Бронь Фамилия1", "pipeline_id": 10156066, "status_id": 80453094},
    {"id": 11642589, "name": "Медцентр Михайлов", "pipeline_id": 10164486, "status_id": 80512650},
]


def account(base_url: str, subdomain: str) -> dict:
    return {
        "id": ACCOUNT_ID,
        "name": ACCOUNT_NAME,
        "subdomain": subdomain,
        "current_user_id": CURRENT_USER_ID,
        "country": "RU",
        "currency": "RUB",
        "currency_symbol": "₽",
        "customers_mode": "disabled",
        "is_unsorted_on": True,
        "is_loss_reason_enabled": False,
        "is_helpbot_enabled": False,
        "is_technical_account": False,
        "contact_name_display_order": 1,
        "created_at": SEEDED_AT,
        "created_by": 0,
        "updated_at": SEEDED_AT,
        "updated_by": 0,
        "_links": {"self": {"href": f"{base_url}/api/v4/account"}},
    }


def custom_fields(base_url: str) -> list[dict]:
    fields = []
    for sort, (field_id, name, field_type, extra) in enumerate(CUSTOM_FIELDS, start=1):
        enums = extra.get("enums")
        fields.append(
            {
                "id": field_id,
                "name": name,
                "code": extra.get("code"),
                "sort": sort * 10,
                "type": field_type,
                "entity_type": "leads",
                "is_computed": extra.get("is_computed", False),
                "is_predefined": False,
                "is_deletable": True,
                "is_visible": True,
                "is_required": False,
                "is_api_only": False,
                "group_id": None,
                "settings": None,
                "remind": None,
                "currency": None,
                "enums": [
                    {"id": enum_id, "value": value, "sort": (index + 1) * 10, "code": code}
                    for index, (enum_id, value, code) in enumerate(enums)
                ]
                if enums
                else None,
                "required_statuses": [],
                "hidden_statuses": [],
                "chained_lists": None,
                "tracking_callback": None,
                "search_in": None,
                "_links": {"self": {"href": f"{base_url}/api/v4/leads/custom_fields/{field_id}"}},
            }
        )
    return fields


def _status(base_url, pipeline_id, status_id, name, sort, color, *, editable, status_type=0):
    path = f"/statuses/{status_id}"
    return {
        "id": status_id,
        "name": name,
        "sort": sort,
        "is_editable": editable,
        "pipeline_id": pipeline_id,
        "color": color,
        "type": status_type,
        "account_id": ACCOUNT_ID,
        "_links": {"self": {"href": f"{base_url}/api/v4/leads/pipelines/{pipeline_id}{path}"}},
    }


def pipelines(base_url: str) -> list[dict]:
    result = []
    for sort, (pipeline_id, name, is_main, unsorted_id, stages) in enumerate(PIPELINES, start=1):
        statuses = [
            _status(
                base_url,
                pipeline_id,
                unsorted_id,
                "Неразобранное",
                10,
                "#c1c1c1",
                editable=False,
                status_type=UNSORTED_STATUS_TYPE,
            )
        ]
        for index, (status_id, status_name, color) in enumerate(stages, start=2):
            statuses.append(
                _status(
                    base_url, pipeline_id, status_id, status_name, index * 10, color, editable=True
                )
            )
        statuses.append(
            _status(
                base_url,
                pipeline_id,
                WON_STATUS_ID,
                "Успешно реализовано",
                10000,
                "#CCFF66",
                editable=False,
            )
        )
        statuses.append(
            _status(
                base_url,
                pipeline_id,
                LOST_STATUS_ID,
                "Закрыто и не реализовано",
                11000,
                "#D5D8DB",
                editable=False,
            )
        )
        result.append(
            {
                "id": pipeline_id,
                "name": name,
                "sort": sort,
                "is_main": is_main,
                "is_unsorted_on": True,
                "is_archive": False,
                "account_id": ACCOUNT_ID,
                "_links": {"self": {"href": f"{base_url}/api/v4/leads/pipelines/{pipeline_id}"}},
                "_embedded": {"statuses": statuses},
            }
        )
    return result


def leads() -> list[dict]:
    """The seeded leads as keyword arguments for ``State.add_lead``."""
    return [
        {**lead, "created_at": SEEDED_AT, "updated_at": SEEDED_AT, "price": 0} for lead in LEADS
    ]
