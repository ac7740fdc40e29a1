"""A fragment is never stored by the browser (no-store), so Back can only bring back a whole page;
the whole page itself stays cacheable for the browser's back-forward cache."""
import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/orders/?state=failed", "/inventory/?show=drift"])
def test_a_fragment_is_not_stored_and_the_page_is(client, ops_user, url):
    client.force_login(ops_user)
    fragment = client.get(url, headers={"HX-Request": "true"})
    page = client.get(url)
    restored = client.get(url, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "no-store" in fragment["Cache-Control"]
    assert "no-store" not in page.get("Cache-Control", "") and "no-store" not in restored.get("Cache-Control", "")
