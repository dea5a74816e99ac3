#!/usr/bin/env python3
"""Bundle a CommonJS package's modules into one browser script.

    scripts/bundle-cjs.py ENTRY.js GLOBAL OUT.js

Debian's node-xterm ships xterm.js as CommonJS modules (require/exports),
which a browser cannot load as they are.  This follows the relative
require("./x") calls from ENTRY, wraps each module in a function with its
own module/exports/require, and writes one script that assigns the entry's
module.exports to window.GLOBAL.  Only relative requires inside the
package are followed; any other require is an error (the browser has no
node modules)."""
import json
import os
import re
import sys

REQ = re.compile(r'require\((["\'])([^"\']+)\1\)')


def resolve(base_dir, spec):
    p = os.path.normpath(os.path.join(base_dir, spec))
    for cand in (p, p + ".js", os.path.join(p, "index.js")):
        if os.path.isfile(cand):
            return cand
    raise SystemExit(f"bundle-cjs: cannot resolve require('{spec}') from {base_dir}")


def main():
    if len(sys.argv) != 4:
        raise SystemExit("usage: bundle-cjs.py ENTRY.js GLOBAL OUT.js")
    entry, glob, out = sys.argv[1:]
    entry = os.path.realpath(entry)
    root = os.path.dirname(entry)
    ids, order, todo = {entry: 0}, [], [entry]
    sources = {}
    while todo:
        f = todo.pop()
        order.append(f)
        src = open(f, encoding="utf-8").read()
        src = re.sub(r"^//# sourceMappingURL=.*$", "", src, flags=re.M)

        def sub(m):
            spec = m.group(2)
            if not spec.startswith("."):
                raise SystemExit(f"bundle-cjs: {f}: require('{spec}') is not relative")
            dep = os.path.realpath(resolve(os.path.dirname(f), spec))
            if not dep.startswith(root + os.sep):
                raise SystemExit(f"bundle-cjs: {f}: {spec} leaves the package")
            if dep not in ids:
                ids[dep] = len(ids)
                todo.append(dep)
            return f"__req({ids[dep]})"

        sources[f] = REQ.sub(sub, src)
    parts = [f"/* {glob}: {len(order)} modules of {root}, bundled by scripts/bundle-cjs.py */",
             "(function () {", "\"use strict\";", "var defs = {}, cache = {};",
             "function __req(id) {",
             "  if (cache[id]) return cache[id].exports;",
             "  var module = cache[id] = { exports: {} };",
             "  defs[id].call(module.exports, module, module.exports, __req);",
             "  return module.exports;", "}"]
    for f in order:
        parts.append(f"defs[{ids[f]}] = function (module, exports, __req) {{ "
                     f"/* {json.dumps(os.path.relpath(f, root))} */")
        parts.append(sources[f])
        parts.append("};")
    parts.append(f"window[{json.dumps(glob)}] = __req(0);")
    parts.append("})();")
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as o:
        o.write("\n".join(parts) + "\n")
    os.replace(tmp, out)


main()
