"""Runs a fixed sequence of client-library operations of the original
DistKV (0.7.1) against the server at HOST PORT and prints what it got, one
line each, with ticks, tocks and node names left out, so that the output
of two servers can be compared.

    python client_ops.py HOST PORT [AUTH]
"""

import sys

import anyio
from distkv.client import open_client
from distkv.exceptions import ServerError


def norm(v):
    """Drop what differs between servers: tocks, seq numbers, chains'
    node names and ticks (kept as their shape)."""
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if k in ("tock", "seq", "tick", "node"):
                continue
            out[k] = norm(x)
        return out
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    return v


def show(label, v):
    print(label, repr(norm(v)), flush=True)


async def main(host, port, auth=None):
    kw = dict(host=host, port=int(port))
    if auth:
        kw["auth"] = auth
    async with open_client(**kw) as c:
        r = await c.set("io", "a", value=1, chain=None, nchain=2)
        show("set new", r)
        first = r.chain
        r = await c.get("io", "a", nchain=-1)
        show("get", r)
        r = await c.set("io", "a", value=2, chain=r.chain, nchain=1)
        show("set with chain", r)
        try:
            await c.set("io", "a", value=3, chain=first)
        except ServerError as e:
            print("stale chain refused", flush=True)
        try:
            await c.set("io", "a", value=3, chain=None)
        except ServerError as e:
            print("exists:", str(e), flush=True)
        await c.set("io", "b", value="x")
        await c.set("io", "b", "c", value=[1, 2, {"k": b"bytes"}])
        await c.set("io", "d", value=None)
        items = []
        async for r in c.get_tree("io", nchain=0):
            items.append((list(r.path), r.get("value", "<none>")))
        show("tree", sorted(items, key=repr))
        seen = []
        async with c.watch("io", fetch=True, nchain=0) as w:
            async def change():
                await anyio.sleep(0.3)
                await c.set("io", "e", value=5)
            async with anyio.create_task_group() as tg:
                await tg.spawn(change)
                async for r in w:
                    if "path" not in r:
                        continue
                    if "value" in r:
                        seen.append((list(r.path), r.value))
                    if list(r.path)[-1:] == ["e"]:
                        break
        show("watch", sorted(seen, key=repr))
        r = await c.delete("io", "a", nchain=1)
        show("delete", r)
        r = await c.get("io", "a")
        show("get deleted", r)
        r = await c._request(action="enumerate", path=("io",), iter=False)
        show("enumerate", sorted(r.result, key=repr))
        try:
            r = await c._request(action="delete_tree", path=("io",), iter=False, nchain=0)
            show("delete_tree", r)
        except ServerError as e:
            print("delete_tree failed:", str(e), flush=True)


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:], backend="trio")
