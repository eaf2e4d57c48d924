"""map / as_completed / for_each / run / submit: results, order, failures, laziness."""

from __future__ import annotations

import itertools
from concurrent.futures import Future

import pytest

from golem_tasks import CommandExecutionError, ConfigurationError, FragmentFailed, FragmentResult, WorkerError

from golem_tasks.testing import FakeProvider

from .helpers import echo, echo_provider, make_golem


def test_map_yields_results_in_input_order():
    fake = echo_provider()
    with make_golem(fake, max_workers=4) as golem:
        results = list(golem.map(echo, range(50)))
    assert [r[0] for r in results] == list(range(50))
    assert [r[1] for r in results] == [str(i) for i in range(50)]


def test_map_is_lazy_and_bounded_by_the_window():
    pulled = itertools.count()

    def items():
        for i in range(10_000):
            next(pulled)
            yield i

    fake = echo_provider()
    with make_golem(fake, max_workers=2, window=8) as golem:
        results = golem.map(echo, items())
        first = [next(results) for _ in range(3)]
        seen = next(pulled)  # how many were pulled by now (+1 for this call)
        results.close()
    assert [r[0] for r in first] == [0, 1, 2]
    assert seen <= 3 + 8 + 1


def test_providers_are_reused_and_at_most_max_workers_engaged():
    fake = echo_provider()
    with make_golem(fake, max_workers=3) as golem:
        list(golem.map(echo, range(40)))
    assert len(fake.sessions) <= 3
    assert fake.assert_all_released() is None


def test_failure_raises_at_its_position_after_the_earlier_results():
    fake = FakeProvider(assert_all_used=False)
    fake.on_run("echo 3", exit_code=1, stderr="three is bad")
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda c, s: c.args[1])
    seen = []
    with make_golem(fake, max_workers=2, max_retries=1) as golem:
        with pytest.raises(FragmentFailed) as info:
            for result in golem.map(echo, range(6)):
                seen.append(result[0])
    assert seen == [0, 1, 2]
    assert info.value.index == 3 and info.value.item == 3
    assert len(info.value.attempts) == 2
    assert all(isinstance(a, CommandExecutionError) for a in info.value.attempts)
    assert "three is bad" in str(info.value.attempts[-1])


def test_return_exceptions_puts_the_failure_in_place():
    fake = FakeProvider(assert_all_used=False)
    fake.on_run("echo 1", exit_code=7)
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda c, s: c.args[1])
    with make_golem(fake, max_workers=2, max_retries=0) as golem:
        results = list(golem.map(echo, range(3), return_exceptions=True))
    assert results[0][0] == 0 and results[2][0] == 2
    assert isinstance(results[1], FragmentFailed)
    assert results[1].attempts[0].exit_code == 7


def test_as_completed_yields_every_fragment_once():
    fake = echo_provider()
    with make_golem(fake, max_workers=4) as golem:
        done = list(golem.as_completed(echo, range(30)))
    assert all(isinstance(d, FragmentResult) for d in done)
    assert sorted(d.index for d in done) == list(range(30))
    assert all(d.value[0] == d.item for d in done)


def test_for_each_runs_everything_and_raises_the_first_failure():
    fake = echo_provider()
    with make_golem(fake, max_workers=2) as golem:
        assert golem.for_each(echo, range(10)) is None
    assert sorted(fake.runs) == sorted(f"echo {i}" for i in range(10))

    def broken(ctx, item):
        yield ctx.run("echo", str(item))
        raise ValueError(f"my bug on {item}")

    with make_golem(echo_provider(), max_workers=1) as golem:
        with pytest.raises(ValueError, match="my bug on 0"):
            golem.for_each(broken, range(3))


def test_run_and_submit():
    fake = echo_provider()
    with make_golem(fake, max_workers=2) as golem:
        assert golem.run(echo, "x")[1] == "x"
        futures = [golem.submit(echo, i) for i in range(5)]
        assert all(isinstance(f, Future) for f in futures)
        assert [f.result(timeout=10)[0] for f in futures] == list(range(5))


def test_worker_exception_fails_at_once_with_its_traceback():
    fake = echo_provider()
    attempts = []

    def worker(ctx, item):
        attempts.append(item)
        yield ctx.run("echo", "1")
        raise KeyError("worker bug")

    with make_golem(fake, max_workers=1, max_retries=3) as golem:
        with pytest.raises(KeyError) as info:
            golem.run(worker, 1)
    assert attempts == [1]  # no retry for the worker's own bug
    assert any(frame.name == "worker" for frame in info.traceback)


def test_retry_on_can_retry_worker_errors_too():
    fake = echo_provider()
    attempts = []

    def worker(ctx, item):
        attempts.append(item)
        yield ctx.run("echo", "1")
        if len(attempts) < 3:
            raise KeyError("flaky")
        return "ok"

    with make_golem(fake, max_workers=1, retry_on=Exception) as golem:
        assert golem.run(worker, 1) == "ok"
    assert len(attempts) == 3


def test_bad_input_is_refused_before_anything_is_engaged():
    fake = echo_provider()

    def plain(ctx, item):
        return item

    with make_golem(fake) as golem:
        with pytest.raises(WorkerError, match="not a generator function"):
            golem.map(plain, [1])
        with pytest.raises(TypeError):
            golem.map(echo, 5)
        with pytest.raises(ConfigurationError, match="max_workers"):
            golem.map(echo, [1], max_workers=0)
        with pytest.raises(ConfigurationError, match="timeout"):
            golem.map(echo, [1], timeout=-1)
    assert fake.sessions == []
    with pytest.raises(ConfigurationError, match="max_workers"):
        make_golem(fake, max_workers=0)
    with pytest.raises(ConfigurationError, match="max_retries"):
        make_golem(fake, max_retries=-1)
    with pytest.raises(ConfigurationError, match="unknown provider 'nowhere'.*local, golem, fake"):
        __import__("golem_tasks").Golem("nowhere")
    with pytest.raises(ConfigurationError, match="do not fit the local provider.*it takes root, sandbox.*"
                                                 r"\. budget is an option of the golem provider "
                                                 r"\(provider=\"golem\"\)$"):
        __import__("golem_tasks").Golem("local", provider_options={"budget": 1})
    with pytest.raises(ConfigurationError, match="this machine's CPU.*localnet up --gpu"):
        __import__("golem_tasks").Golem("local", provider_options={"gpu": True})
    with pytest.raises(ConfigurationError, match="only apply to a provider given by name"):
        make_golem(fake, provider_options={"latency": 1})


def test_a_keyword_golem_does_not_take_says_where_it_belongs():
    # yapapi's Golem(budget=..., subnet_tag=...) is what users write first
    Golem = __import__("golem_tasks").Golem
    with pytest.raises(ConfigurationError, match=r"""Golem\(\) takes no budget=: it is an option of the golem """
                                                 r"""provider; pass Golem\(provider="golem", provider_options="""
                                                 r"""\{'budget': '2.5'\}\)"""):
        Golem(provider="golem", budget="2.5")
    with pytest.raises(ConfigurationError, match=r"no sandbox=: .*local provider; pass Golem\(provider_options="):
        Golem(sandbox="bwrap")
    with pytest.raises(ConfigurationError, match=r"no outbound=: .*the golem, local and fake providers; pass "
                                                 r"Golem\(provider=\"fake\", provider_options="):
        Golem(provider="fake", outbound=["http://127.0.0.1:9"])
    with pytest.raises(ConfigurationError, match="no budget=: .*give it to the provider instance you pass"):
        Golem(FakeProvider(), budget=1)
    with pytest.raises(ConfigurationError, match="no max_worker=: did you mean max_workers=?"):
        Golem(max_worker=2)
    with pytest.raises(ConfigurationError, match="no colour=: it takes provider, image, provider_options, "):
        Golem(colour="blue")


def test_a_worker_yielding_a_string_gets_a_clear_error():
    def worker(ctx, item):
        yield "date"

    with make_golem(echo_provider()) as golem:
        with pytest.raises(WorkerError, match="must yield a Batch"):
            golem.run(worker, 1)


def test_an_iterable_that_raises_surfaces_to_the_caller():
    def items():
        yield 1
        raise OSError("input broke")

    with make_golem(echo_provider(), max_workers=1) as golem:
        with pytest.raises(OSError, match="input broke"):
            list(golem.map(echo, items()))


def test_a_provider_bug_is_not_passed_off_as_a_bad_option(monkeypatch):
    # A TypeError raised inside a provider's constructor is the provider's own problem.
    from golem_tasks.providers import local

    def broken(self, *args, **kwargs):
        raise TypeError("a bug inside the provider")
    monkeypatch.setattr(local.LocalProvider, "__init__", broken)
    with pytest.raises(TypeError, match="a bug inside the provider"):
        __import__("golem_tasks").Golem("local", provider_options={"keep": True})
