import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_hub_admin_logs_in_and_sees_the_admin(browse, hub_admin, screens, live_server):
    page = browse(hub_admin)
    screens.shot(page, "index")
    assert page.url.endswith("/admin/")
