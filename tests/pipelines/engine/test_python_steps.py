"""The commands kfp 2 compiles Python components into are recognized, and their pip
preamble is skipped only when the step interpreter already has what it installs."""

import os
import sys
import warnings

from pipelines.engines import python_steps


def compiled_command(**options) -> list[str]:
    from kfp import dsl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")

        @dsl.component(**options)
        def hello(name: str) -> str:
            return f"hello {name}"

    container = hello.component_spec.implementation.container
    return [*container.command, *container.args]


def test_it_splits_a_lightweight_component_into_requirements_and_a_python_step():
    recognized = python_steps.recognize(compiled_command(packages_to_install=["six>=1.0"]))
    assert recognized.requirements[0] == "six>=1.0"
    assert any(r.startswith("kfp==") for r in recognized.requirements)
    assert not recognized.uncheckable
    step = recognized.python
    assert step.module == "kfp.dsl.executor_main"
    assert "def hello(name: str) -> str:" in step.source
    assert step.args == ["--executor_input", "{{$}}", "--function_to_execute", "hello"]


def test_it_leaves_other_commands_alone():
    for argv in (["echo", "hi"], ["sh", "-c", "pip install x"], ["python3", "train.py"]):
        recognized = python_steps.recognize(argv)
        assert recognized.requirements is None and recognized.python is None
        assert recognized.command == argv


def test_it_reads_the_python_executor_without_preamble_as_a_python_step():
    recognized = python_steps.recognize(["python3", "-m", "kfp.dsl.executor_main", "--x", "1"])
    assert recognized.python.module == "kfp.dsl.executor_main"
    assert recognized.python.args == ["--x", "1"] and recognized.python.source is None


def test_it_knows_what_the_step_interpreter_lacks():
    env = dict(os.environ)
    requirements = ["kfp==2.0.1", "pytest>=1", 'typing-extensions<5; python_version<"3.9"',
                    "surely-not-installed-package-kfdash==1.0", "django<1.0",
                    "git+https://example.com/x.git"]
    missing = python_steps.missing(requirements, sys.executable, env)
    # Any kfp 2 meets a kfp 2 pin; a marker for another Python is met.
    assert missing == ["surely-not-installed-package-kfdash==1.0", "django<1.0",
                       "git+https://example.com/x.git"]


def test_a_requirement_file_in_the_preamble_cannot_be_checked():
    argv = ["sh", "-c", 'PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install -r reqs.txt '
                        '&& "$0" "$@"\n', "echo", "hi"]
    recognized = python_steps.recognize(argv)
    assert recognized.uncheckable and recognized.command == ["echo", "hi"]
