"""Calculator domain errors, and the Chinese texts a calculator shows about its own data.

The messages here speak about what a marketer wrote (a formula, a table, a field label), so they
are built from that Chinese data and stay Chinese; the exception's ``message`` stays the shared,
translated "Some fields are not valid." and the details travel in ``fields`` = {path: text}.
"""

from __future__ import annotations

from app.core.errors import InvalidInput


class InvalidDefinition(InvalidInput):
    """The definition's structure is wrong: a type, a missing key, a duplicate, a bad table."""

    code = "invalid_definition"


class InvalidFormula(InvalidDefinition):
    """A formula (or a ``show_if`` condition) was refused when it was saved.

    ``path`` names it ("variables.total", "outputs.total.low", "fields.kitchen.show_if"),
    ``column`` is the 0-based character offset of the problem in the formula's text.
    """

    code = "invalid_formula"

    def __init__(self, path: str, column: int, reason: str) -> None:
        self.path = path
        self.column = column
        self.reason = reason
        super().__init__(fields={path: f"{reason}（第 {column + 1} 个字符）"})

    def __str__(self) -> str:
        return f"{self.path}: {self.reason} (column {self.column})"


# Definition problems the schema finds (app/calculators/schemas.py), by what msgspec said.
MSG_BAD_URL = "链接只能是 http:// 或 https:// 开头的完整网址，或以 / 开头的本站路径"
MSG_NUMBER_RANGE = "数字超出允许范围（绝对值不能超过 10¹⁵）"


def schema_problem(message: str, path: str) -> str:
    """What the editor shows for msgspec's ``message`` about the value at ``path``."""
    if path.endswith("url") and "matching regex" in message:
        return MSG_BAD_URL
    if message.startswith(("Expected `float` >=", "Expected `float` <=")):
        return MSG_NUMBER_RANGE
    return f"格式不对：{message}"


# Visitor-facing input problems; {label} is the field's label, {limit} a formatted bound.
MSG_REQUIRED = "请填写{label}"
MSG_CHOOSE = "请选择{label}"
MSG_NOT_A_NUMBER = "{label}需要填写数字"
MSG_NOT_AN_INTEGER = "{label}需要填写整数"
MSG_TOO_SMALL = "{label}不能小于 {limit}"
MSG_TOO_LARGE = "{label}不能大于 {limit}"
MSG_NOT_AN_OPTION = "{label}的选项无效，请重新选择"
MSG_NOT_A_BOOLEAN = "{label}的取值无效"

# Run-time warnings: the result is still defined (0 or the table default), the preview says why.
WARN_DIVISION_BY_ZERO = "{path}：除数为 0，结果按 0 计"
WARN_NOT_FINITE = "{path}：结果超出可计算范围，按 0 计"
WARN_BAD_POWER = "{path}：乘方超出允许范围，结果按 0 计"
WARN_LOOKUP_MISS = "{path}：表 {table} 中没有 {keys}，结果按 0 计"
