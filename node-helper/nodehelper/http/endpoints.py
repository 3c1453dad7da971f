"""The endpoints that are more than a JSON object in and out (those are routes.post): each takes the exchange and
the path's parameters, calls the services, and answers."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from nodehelper.criu import criuconfig
from nodehelper.errors import BadRequest, NotFound
from nodehelper.http.exchange import Exchange
from nodehelper.services import gc, images, pods, transfer
from nodehelper.services.restore import settle
from nodehelper.streams import codec
from pmcontract import names, paths

log = logging.getLogger("nodehelper")


def healthz(x: Exchange, params: Mapping[str, str]) -> int:
    return x.send_json(200, x.server.helper.health())


def node(x: Exchange, params: Mapping[str, str]) -> int:
    if x.server.node_facts is None:
        raise NotFound("this helper reports no node facts")
    return x.send_json(200, x.server.node_facts.answer())


def put_archive(x: Exchange, params: Mapping[str, str]) -> int:
    answer = transfer.receive(
        x.server.helper,
        params["id"],
        x.body,
        peer=x.caller.node or "",
        content_encoding=(x.header("Content-Encoding") or "identity").strip().lower(),
        sha256=x.header(names.SHA256_HEADER),
        decoded_length=x.header(names.DECODED_LENGTH_HEADER),
        wire_length=x.body.length,
    )
    return x.send_json(200, answer)


def image_export(x: Exchange, params: Mapping[str, str]) -> int:
    ref = x.param(paths.IMAGE_QUERY)
    if not ref:
        raise BadRequest(f"query parameter {paths.IMAGE_QUERY} is required")
    with (
        images.exported_image(x.server.helper, ref, x.caller.node or "") as (archive, digest),
        open(archive, "rb") as f,
    ):
        headers = {"Content-Type": "application/octet-stream", "Content-Encoding": "zstd", names.SHA256_HEADER: digest}
        return x.send_stream(headers, codec.chunks(codec.encoder(f, "zstd")))


def restored(x: Exchange, params: Mapping[str, str]) -> int:
    answer = settle.restored(x.server.helper.containers, x.param(paths.NAMESPACE_QUERY), x.param(paths.POD_QUERY))
    return x.send_json(200, answer)


def pod_memory(x: Exchange, params: Mapping[str, str]) -> int:
    return x.send_json(200, pods.memory(x.server.pods, params["uid"]))


def progress(x: Exchange, params: Mapping[str, str]) -> int:
    return x.send_json(200, x.server.helper.progress.get(params["id"]))


def held_migrations(x: Exchange, params: Mapping[str, str]) -> int:
    return x.send_json(200, gc.held_migrations(x.server.helper))


def delete_migration(x: Exchange, params: Mapping[str, str]) -> int:
    aliases = x.param(paths.ALIASES_QUERY) == "true"
    return x.send_json(200, gc.delete_migration(x.server.helper, params["uid"], aliases))


def remove_criu_options(x: Exchange, params: Mapping[str, str]) -> int:
    """The chart's uninstall hook, before the DaemonSet goes: the node's runc.conf without our block. Not on
    SIGTERM, which an upgrade sends too."""
    conf = x.server.criu_config
    if conf is None:
        raise NotFound("this helper manages no CRIU configuration")
    removed = criuconfig.apply(conf, [])
    log.info("removed the CRIU options block from %s: %s", conf, "done" if removed else "none")
    return x.send_json(200, {"removed": removed})
