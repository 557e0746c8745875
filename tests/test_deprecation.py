"""How deprecated names warn: the removal release, what to use instead, the caller's line."""

import pytest

from dataloop.deprecation import REMOVED_IN, deprecated, moved_names


def old_function() -> int:
    deprecated("old_function() is deprecated; call new_function()")
    return 1


def test_deprecated_names_the_removal_release_and_points_at_the_caller() -> None:
    with pytest.warns(
        DeprecationWarning, match=rf"call new_function\(\) \(removed in {REMOVED_IN}\)"
    ) as seen:
        assert old_function() == 1
    assert seen[0].filename == __file__  # the caller's line, not the helper's


def test_moved_names_imports_the_new_place_only_for_a_moved_name() -> None:
    getattr_ = moved_names("oldpkg.mod", {"dumps": "json"})
    with pytest.warns(DeprecationWarning, match=r"oldpkg\.mod\.dumps moved to json\.dumps") as seen:
        dumps = getattr_("dumps")
    assert dumps([1]) == "[1]"
    assert seen[0].filename == __file__
    with pytest.raises(AttributeError, match=r"'oldpkg\.mod' has no attribute 'loads'"):
        getattr_("loads")


def test_a_moved_module_attribute_warns_from_the_user_line() -> None:
    with pytest.warns(DeprecationWarning, match="import Templates from dataloop.llm") as seen:
        from dataloop.engine import Templates  # noqa: F401
    assert seen[0].filename == __file__
