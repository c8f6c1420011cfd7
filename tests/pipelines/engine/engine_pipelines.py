"""Pipelines the engine tests run, written with the real kfp 2 SDK (compiled in the test
process by conftest.compile_pipeline). Steps are trivial on purpose: the tests are about
the engine, and the whole folder should run in well under two minutes."""

from kfp import dsl
from kfp.dsl import (
    Dataset,
    Input,
    Metrics,
    Output,
    OutputPath,
    PipelineTaskFinalStatus,
)

IMAGE = "python:3.11"


@dsl.component(base_image=IMAGE)
def add(a: int, b: int = 1) -> int:
    return a + b


@dsl.component(base_image=IMAGE)
def number(value: int = 5) -> int:
    return value


@dsl.component(base_image=IMAGE)
def echo(msg: str) -> str:
    print(f"echo says {msg}")
    return msg


@dsl.component(base_image=IMAGE)
def listing(count: int) -> list:
    return list(range(4, 4 + count))


@dsl.component(base_image=IMAGE)
def total(values: list) -> int:
    return sum(int(v) for v in values)


@dsl.component(base_image=IMAGE)
def nap(seconds: float, marker: str) -> str:
    """Sleeps, recording when it ran (the parallelism tests read the markers)."""
    import time

    start = time.time()
    time.sleep(seconds)
    with open(marker, "a") as handle:
        handle.write(f"{start} {time.time()}\n")
    return marker


@dsl.component(base_image=IMAGE)
def flaky(counter: str, fail_times: int) -> int:
    """Fails its first ``fail_times`` runs (counted in the file ``counter``)."""
    import os

    runs = 0
    if os.path.exists(counter):
        with open(counter) as handle:
            runs = int(handle.read())
    with open(counter, "w") as handle:
        handle.write(str(runs + 1))
    if runs < fail_times:
        raise RuntimeError(f"failing on purpose, run {runs + 1}")
    return runs + 1


@dsl.component(base_image=IMAGE)
def count_run(counter: str, value: int) -> int:
    """Counts its executions in ``counter`` (the caching tests check it is not run)."""
    with open(counter, "a") as handle:
        handle.write("ran\n")
    return value * 2


@dsl.component(base_image=IMAGE)
def boom(msg: str):
    raise ValueError(f"boom: {msg}")


@dsl.component(base_image=IMAGE)
def report(status: PipelineTaskFinalStatus, marker: str):
    with open(marker, "w") as handle:
        handle.write(f"{status.state} {status.error_message or ''}")


@dsl.component(base_image=IMAGE)
def make_dataset(rows: int, data: Output[Dataset], metrics: Output[Metrics]):
    with open(data.path, "w") as handle:
        handle.write("\n".join(str(i) for i in range(rows)))
    data.metadata["rows"] = rows
    metrics.log_metric("accuracy", 0.75)
    metrics.log_metric("rows", rows)


@dsl.component(base_image=IMAGE)
def read_dataset(data: Input[Dataset]) -> int:
    with open(data.path) as handle:
        return len(handle.read().splitlines()) + int(data.metadata.get("rows", 0)) * 100


@dsl.component(base_image=IMAGE)
def write_path(text: str, out: OutputPath(str)):
    with open(out, "w") as handle:
        handle.write(text.upper())


@dsl.container_component
def shout(word: str, out: dsl.OutputPath(str)):
    return dsl.ContainerSpec(image="alpine", command=["sh", "-c", 'printf "%s!" "$0" > "$1"'],
                             args=[word, out])


@dsl.container_component
def which_python():
    return dsl.ContainerSpec(image="python:3.11", command=["python3", "-c"],
                             args=["import sys; print('python is', sys.executable)"])


@dsl.container_component
def shell(script: str):
    return dsl.ContainerSpec(image="alpine", command=["sh", "-c"], args=[script])


@dsl.pipeline(name="chain")
def chain(start: int = 1):
    first = add(a=start)
    second = add(a=first.output, b=10)
    third = add(a=second.output, b=100)
    echo(msg=f"total {third.output}")
    shout(word=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)


@dsl.pipeline(name="fan-out")
def fan_out(marker: str, seconds: float = 0.6):
    naps = [nap(seconds=seconds, marker=marker).set_caching_options(False) for _ in range(4)]
    total(values=[1, 2]).after(*naps)


@dsl.pipeline(name="branches")
def branches(value: int = 5):
    n = number(value=value)
    with dsl.If(n.output > 3, name="big"):
        echo(msg="big")
    with dsl.Elif(n.output > 1, name="medium"):
        echo(msg="medium")
    with dsl.Else(name="small"):
        echo(msg="small")
    with dsl.Condition(n.output == 5, name="five"):
        echo(msg="five")
    word = echo(msg="heads")
    with dsl.If(word.output == "tails", name="tails"):
        echo(msg="tails")


@dsl.pipeline(name="loops")
def loops(values: list = [1, 2, 3], marker: str = ""):  # noqa: B006
    with dsl.ParallelFor([10, 20]) as literal:
        add(a=literal)
    with dsl.ParallelFor(values, parallelism=1) as value:
        nap(seconds=0.2, marker=marker).after(add(a=value)).set_caching_options(False)
    with dsl.ParallelFor([{"word": "x"}, {"word": "y"}]) as pair:
        shout(word=pair.word)
    produced = listing(count=2)
    with dsl.ParallelFor(produced.output) as item:
        doubled = add(a=item, b=item)
    total(values=dsl.Collected(doubled.output))


@dsl.pipeline(name="exit-handling")
def exit_handling(marker: str):
    final = report(marker=marker)
    with dsl.ExitHandler(final, name="guarded"):
        boom(msg="inside")


@dsl.pipeline(name="retrying")
def retrying(counter: str, other_counter: str):
    flaky(counter=counter, fail_times=1).set_retry(num_retries=2, backoff_duration="0s")
    flaky(counter=other_counter, fail_times=5).set_retry(num_retries=1,
                                                         backoff_duration="0s")


@dsl.pipeline(name="cached")
def cached(counter: str, value: int = 4):
    doubled = count_run(counter=counter, value=value)
    again = count_run(counter=counter, value=doubled.output)
    data = make_dataset(rows=value)
    read_dataset(data=data.outputs["data"]).after(again)


@dsl.pipeline(name="memoized")
def memoized(values: list = [1, 2], word: str = "hi", counter: str = ""):  # noqa: B006
    with dsl.ParallelFor(values) as value:  # keys only known in the run: Argo memoizes
        data = make_dataset(rows=value)
        read_dataset(data=data.outputs["data"])
    add(a=number(value=3).output).set_retry(2)  # known at submit (number's output once cached)
    shout(word=word)


@dsl.pipeline(name="failing")
def failing():
    broken = boom(msg="on purpose")
    echo(msg="after").after(broken)
    number().set_caching_options(False)


@dsl.pipeline(name="shell-step")
def shell_step(script: str):
    shell(script=script).set_caching_options(False)


@dsl.pipeline(name="two-shell-steps")
def two_shell_steps(first: str, second: str):
    """Two steps side by side, neither waiting for the other."""
    shell(script=first).set_caching_options(False).set_display_name("first")
    shell(script=second).set_caching_options(False).set_display_name("second")


@dsl.pipeline(name="pythons")
def pythons():
    which_python().set_caching_options(False)
    shell(script="python3 -c 'import sys; print(\"shell python is\", sys.executable)'"
          ).set_caching_options(False)


@dsl.pipeline(name="artifacts")
def artifacts_pipeline(source: str, rows: int = 3):
    data = make_dataset(rows=rows)
    read_dataset(data=data.outputs["data"])
    write_path(text="quiet")
    imported = dsl.importer(artifact_uri=source, artifact_class=Dataset,
                            metadata={"origin": "host"})
    read_dataset(data=imported.output).set_display_name("read imported")


@dsl.pipeline(name="one-of")
def one_of(value: int = 5):
    n = number(value=value)
    with dsl.If(n.output > 3):
        big = add(a=n.output, b=1000)
    with dsl.Else():
        small = add(a=n.output, b=0)
    add(a=dsl.OneOf(big.output, small.output), b=0)


@dsl.component(base_image=IMAGE)
def hog(megabytes: int) -> int:
    """Allocates (and writes) ``megabytes`` MB."""
    data = bytearray(megabytes * 1024 * 1024)
    return len(data) // (1024 * 1024)


@dsl.pipeline(name="memory-limits")
def memory_limits(megabytes: int = 1024):
    hog(megabytes=megabytes).set_memory_limit("200M").set_display_name("hungry") \
        .set_caching_options(False)
    hog(megabytes=1).set_memory_limit("200M").set_display_name("modest") \
        .set_caching_options(False)
    hog(megabytes=1).set_display_name("unlimited").set_caching_options(False)
    shell(script=f"python3 -c 'x = bytearray({megabytes} << 20)'").set_memory_limit("200M") \
        .set_display_name("hungry-process").set_caching_options(False)
