"""Language tags as clients, labels and providers write them ("ko", "ko-KR", "pt_BR")."""


def language_tag(code: str) -> str:
    """The tag in one spelling: trimmed, lower-case, hyphens ("pt_BR" -> "pt-br")."""
    return code.strip().lower().replace("_", "-")


def language_base(code: str) -> str:
    """The ISO 639 part of a tag ("ko-KR" -> "ko")."""
    return language_tag(code).partition("-")[0]
