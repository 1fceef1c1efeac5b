"""Search attribute registration for a cluster (the dev server gets them as start flags)."""

from temporalio.api.enums.v1 import IndexedValueType

from workflows import search_attributes as sa

_API_TYPES = {"KEYWORD": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
              "DATETIME": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
              "INT": IndexedValueType.INDEXED_VALUE_TYPE_INT, "BOOL": IndexedValueType.INDEXED_VALUE_TYPE_BOOL}
_CLI_TYPES = {"KEYWORD": "Keyword", "DATETIME": "Datetime", "INT": "Int", "BOOL": "Bool"}


def _kind(key) -> str:  # noqa: ANN001
    return key.indexed_value_type.name.rsplit("_", 1)[-1]


def api_types() -> dict:
    return {key.name: _API_TYPES[_kind(key)] for key in sa.ALL}


def dev_server_flags() -> list[str]:
    flags: list[str] = []
    for key in sa.ALL:
        flags += ["--search-attribute", f"{key.name}={_CLI_TYPES[_kind(key)]}"]
    return flags


def start_local_specs() -> list:
    return list(sa.ALL)
