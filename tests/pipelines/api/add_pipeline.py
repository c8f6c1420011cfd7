"""A small kfp 2 pipeline for the API tests, compiled by the real kfp 2 compiler (in the
test process by conftest.py, and in a user-like script by the live SDK tests)."""

from kfp import dsl


@dsl.component(base_image="python:3.11")
def add(a: int, b: int) -> int:
    return a + b


@dsl.component(base_image="python:3.11")
def say(msg: str):
    print(msg)


@dsl.pipeline(name="add-pipeline", description="Adds two numbers.")
def add_pipeline(a: int = 3, msg: str = "hi", ratio: float = 0.5):
    total = add(a=a, b=2)
    say(msg=msg).after(total)
