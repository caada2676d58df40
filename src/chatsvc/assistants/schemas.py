"""Validated assistant configuration, as every face hands it to the service."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, field_validator

from chatsvc.kit.validation import MAX_ID, InputModel, PatchModel

LIMIT_MAX = 2_147_483_647

CSS_NAMED_COLORS = frozenset(
    """
    aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue
    blueviolet brown burlywood cadetblue chartreuse chocolate coral cornflowerblue cornsilk
    crimson cyan darkblue darkcyan darkgoldenrod darkgray darkgreen darkgrey darkkhaki
    darkmagenta darkolivegreen darkorange darkorchid darkred darksalmon darkseagreen
    darkslateblue darkslategray darkslategrey darkturquoise darkviolet deeppink deepskyblue
    dimgray dimgrey dodgerblue firebrick floralwhite forestgreen fuchsia gainsboro
    ghostwhite gold goldenrod gray green greenyellow grey honeydew hotpink indianred indigo
    ivory khaki lavender lavenderblush lawngreen lemonchiffon lightblue lightcoral lightcyan
    lightgoldenrodyellow lightgray lightgreen lightgrey lightpink lightsalmon lightseagreen
    lightskyblue lightslategray lightslategrey lightsteelblue lightyellow lime limegreen
    linen magenta maroon mediumaquamarine mediumblue mediumorchid mediumpurple
    mediumseagreen mediumslateblue mediumspringgreen mediumturquoise mediumvioletred
    midnightblue mintcream mistyrose moccasin navajowhite navy oldlace olive olivedrab
    orange orangered orchid palegoldenrod palegreen paleturquoise palevioletred papayawhip
    peachpuff peru pink plum powderblue purple rebeccapurple red rosybrown royalblue
    saddlebrown salmon sandybrown seagreen seashell sienna silver skyblue slateblue
    slategray slategrey snow springgreen steelblue tan teal thistle tomato turquoise violet
    wheat white whitesmoke yellow yellowgreen transparent currentcolor
    """.split()
)
_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_FUNCTIONAL = re.compile(
    r"^(?:rgba?|hsla?|hwb|lab|lch|oklab|oklch)\(\s*[-+0-9.%a-z\s,/]{1,80}\)$", re.IGNORECASE
)
_STRATEGY = re.compile(r"^(?:none|last_n(?::[1-9][0-9]{0,4})?|token_budget(?::[1-9][0-9]{0,6})?)$")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


def _css_color(value: str) -> str:
    text = value.strip()
    if _HEX.match(text) or _FUNCTIONAL.match(text) or text.lower() in CSS_NAMED_COLORS:
        return text
    raise ValueError(
        f"{value!r} is not a CSS colour (use #rgb, #rrggbb, rgb(...), hsl(...) or a colour name)"
    )


def _url(value: str) -> str:
    if not _URL.match(value):
        raise ValueError("must be an absolute http(s) URL")
    return value


CssColor = Annotated[str, StringConstraints(max_length=100), AfterValidator(_css_color)]
ColorName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Limit = Annotated[int, Field(ge=1, le=LIMIT_MAX)]
ToolId = Annotated[int, Field(ge=1, le=MAX_ID)]
ToolIds = Annotated[list[ToolId], Field(max_length=64)]
ShortText = Annotated[str, StringConstraints(max_length=255)]
LongText = Annotated[str, StringConstraints(max_length=20_000)]
Url = Annotated[str, StringConstraints(max_length=2048), AfterValidator(_url)]
Strategy = Annotated[
    str,
    StringConstraints(max_length=32),
    AfterValidator(lambda v: v if _STRATEGY.match(v) else _bad_strategy(v)),
]
GeneratorName = Annotated[str, StringConstraints(min_length=1, max_length=100)]


def _bad_strategy(value: str) -> str:
    raise ValueError(
        f"{value!r} is not a strategy: use none, last_n (or last_n:N) or token_budget "
        "(or token_budget:N)"
    )


class AssistantIn(InputModel):
    """Every writable field of an assistant; omitted fields take their documented defaults."""

    description: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    generation_config: GeneratorName | None = None
    generation_config_pretools: GeneratorName | None = None
    system_prompt: Annotated[str, StringConstraints(max_length=100_000)] = ""
    temperature: Annotated[float, Field(ge=0, le=2, allow_inf_nan=False)] = 0.7
    max_responses: Limit = 1000
    max_msg_length: Limit = 4000
    max_consecutive_tool_calls: Limit = 5
    initial_message: LongText | None = None
    end_message: LongText | None = None
    add_to_user_message: LongText | None = None
    not_info_message: LongText | None = None
    strategy_to_optimize_tokens: Strategy = "none"
    matrix_mode_available: bool = False
    faq_available: bool = True
    fixed_available: bool = True
    lessons_available: bool = True
    realtime_available: bool = True
    streaming_available: bool = True
    info: ShortText | None = None
    colors: Annotated[dict[ColorName, CssColor], Field(max_length=32)] | None = None
    logo: Url | None = None
    tools: ToolIds = Field(default_factory=list)
    pretools: ToolIds = Field(default_factory=list)

    @field_validator("tools", "pretools")
    @classmethod
    def _unique(cls, ids: list[int]) -> list[int]:
        if len(set(ids)) != len(ids):
            raise ValueError("a tool may appear only once in the list")
        return ids

    @field_validator("strategy_to_optimize_tokens", mode="before")
    @classmethod
    def _none_strategy(cls, value: Any) -> Any:
        return "none" if value is None or value == "" else value


#: fields that may be sent as null
NULLABLE = frozenset(
    {
        "generation_config",
        "generation_config_pretools",
        "initial_message",
        "end_message",
        "add_to_user_message",
        "not_info_message",
        "info",
        "colors",
        "logo",
        "strategy_to_optimize_tokens",  # null means the default, "none"
    }
)


class AssistantPatch(PatchModel, AssistantIn):
    """A partial update: only the fields sent are changed."""

    nullable = NULLABLE

    # Optional here (a patch may leave it out); an explicit null is refused (PatchModel).
    description: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None  # type: ignore[assignment]
