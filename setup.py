"""Packages for setuptools; everything else is in pyproject.toml.

The shipped decks stay in the top-level content/ folder of the repository, and the wheel carries them as
the package data of `bot.content` (installed as bot/content/), so `pip install .` or `pipx install .` finds
the question bank from any folder. pyproject.toml cannot map one extra folder into a package while also
discovering the packages, hence this file.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["bot", "bot.*"]), "bot.content"],
    package_dir={"bot.content": "content"},
)
