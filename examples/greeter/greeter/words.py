"""Greetings, kept apart from the command line so the trampoline bundles two modules."""


def greeting(name: str, shout: bool = False) -> str:
    text = f"Hello, {name}!"
    return text.upper() if shout else text
