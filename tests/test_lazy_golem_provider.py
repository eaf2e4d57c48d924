"""``golem_tasks.GolemProvider`` is the Golem backend, loaded only when asked for."""

import subprocess
import sys

import golem_tasks


def test_golem_provider_is_exported_lazily():
    code = ("import sys, golem_tasks; assert 'golem_tasks.providers.yagna' not in sys.modules; "
            "from golem_tasks import GolemProvider; "
            "from golem_tasks.providers.yagna import GolemProvider as Same; assert GolemProvider is Same")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert "GolemProvider" in golem_tasks.__all__ and "GolemProvider" in dir(golem_tasks)


def test_an_unknown_name_is_still_an_attribute_error():
    try:
        golem_tasks.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("no AttributeError")
