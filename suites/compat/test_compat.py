"""The compat suite users run: `pytest --image NAME[=REF]`, one test per image and aspect of
the registry (harness.aspects.REGISTRY), each named `test_ASPECT`."""

from collections.abc import Callable

from harness.aspects import REGISTRY
from harness.aspects.aspect import Aspect
from harness.outcome.result import AspectResult

Check = Callable[[str], AspectResult]


def _test(aspect: Aspect) -> Callable[[Check], None]:
    def test(compat_check: Check) -> None:
        compat_check(aspect.name)

    test.__name__ = test.__qualname__ = f"test_{aspect.name}"
    test.__doc__ = aspect.summary
    return test


for _aspect in REGISTRY:
    globals()[f"test_{_aspect.name}"] = _test(_aspect)
