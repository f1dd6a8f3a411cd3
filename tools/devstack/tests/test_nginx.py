from pathlib import Path

import pytest

from shopstack_devstack.nginx import TEMPLATES, LocalNginx, render
from shopstack_devstack.settings import DevstackSettings


def test_render_substitutes_only_our_variables(tmp_path: Path) -> None:
    template = tmp_path / "t.conf"
    template.write_text("listen ${SHOPSTACK_NGINX_LISTEN}; set $x $host; ${UNKNOWN}")
    assert (
        render(template, {"SHOPSTACK_NGINX_LISTEN": "8080"})
        == "listen 8080; set $x $host; ${UNKNOWN}"
    )


def test_the_shipped_config_passes_nginx_t(tmp_path: Path) -> None:
    nginx = LocalNginx(
        prefix=tmp_path / "nginx", listen="127.0.0.1:18080", gateway="127.0.0.1:18000"
    )
    config = nginx.prepare()
    rendered = (tmp_path / "nginx" / "conf.d" / "shopstack.conf").read_text()
    assert "${" not in rendered
    assert "server 127.0.0.1:18000" in rendered
    assert config.exists()


def test_further_gateways_are_servers_of_the_one_upstream(tmp_path: Path) -> None:
    nginx = LocalNginx(
        prefix=tmp_path / "nginx", listen="127.0.0.1:18080", gateway="127.0.0.1:18000",
        more_gateways=("127.0.0.1:18010", "127.0.0.1:18011"),
    )  # fmt: skip
    nginx.prepare()  # nginx -t passes
    rendered = (tmp_path / "nginx" / "conf.d" / "shopstack.conf").read_text()
    upstream = rendered.split("upstream shopstack_gateway {", 1)[1].split("}", 1)[0]
    for port in (18000, 18010, 18011):
        assert f"server 127.0.0.1:{port} max_fails=0;" in upstream


def test_the_gateway_ports_follow_the_instance_count() -> None:
    settings = DevstackSettings(gateway_port=9000, gateway_instances=3, gateway_extra_port=9100)
    assert settings.gateway_ports == [9000, 9100, 9101]
    assert DevstackSettings(gateway_port=9000).gateway_ports == [9000]


def test_a_broken_config_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "templates"
    broken.mkdir()
    (broken / "shopstack.conf.template").write_text("server { listen nonsense-port; }")
    (tmp_path / "nginx.local.conf.template").write_text(
        (TEMPLATES / "nginx.local.conf.template").read_text()
    )
    monkeypatch.setattr("shopstack_devstack.nginx.TEMPLATES", tmp_path)
    with pytest.raises(RuntimeError, match="nginx config test failed"):
        LocalNginx(prefix=tmp_path / "out", listen="127.0.0.1:1", gateway="127.0.0.1:2").prepare()


# Debian's nginx comes with the live monitoring tier (make test-monitoring-live installs it).
@pytest.mark.monitoring_live
def test_the_status_server_is_there_only_when_asked(tmp_path: Path) -> None:
    plain = LocalNginx(prefix=tmp_path / "plain", listen="127.0.0.1:18080", gateway="127.0.0.1:1")
    plain.prepare()
    assert not (tmp_path / "plain" / "conf.d" / "status.conf").exists()
    if not Path("/usr/sbin/nginx").exists():
        pytest.fail("no Debian nginx: monitoring/tools/install-tools live installs it")
    monitored = LocalNginx(
        prefix=tmp_path / "monitored",
        listen="127.0.0.1:18080",
        gateway="127.0.0.1:1",
        status_listen="127.0.0.1:18081",
    )
    monitored.prepare()  # nginx -t with the binary that has stub_status
    status = (tmp_path / "monitored" / "conf.d" / "status.conf").read_text()
    assert "listen 127.0.0.1:18081;" in status
    assert "stub_status;" in status
    assert monitored.binary == Path("/usr/sbin/nginx")
