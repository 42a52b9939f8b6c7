// Run a Python file on the 32-bit webassembly MicroPython under node.
//
//   node tests/mp/run.mjs ROOT SCRIPT.py [EXTRA.py ...]
//
// Copies the firmware package from ROOT into the VM's filesystem, plus any
// extra files (modules or data) into /lib, the working directory, puts /lib
// on sys.path, and runs SCRIPT.
// Prints what Python prints; exits 1 with the traceback if Python raised.
import { readFileSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const [root, script, ...extra] = process.argv.slice(2);
let out = "";
const mp = await loadMicroPython({
  heapsize: 16 * 1024 * 1024,
  stdout: (line) => { out += line + "\n"; },
  stderr: (line) => { process.stderr.write(line + "\n"); },
  linebuffer: true,
});
mp.FS.mkdir("/lib");
for (const pkg of ["firmware"]) {
  mp.FS.mkdir(`/lib/${pkg}`);
  for (const name of readdirSync(join(root, pkg))) {
    if (name.endsWith(".py")) {
      mp.FS.writeFile(`/lib/${pkg}/${name}`, readFileSync(join(root, pkg, name), "utf8"));
    }
  }
}
for (const path of extra) {
  mp.FS.writeFile(`/lib/${basename(path)}`, readFileSync(path));  // bytes: data files too
}
mp.FS.chdir("/lib");
try {
  mp.runPython("import sys\nsys.path.insert(0, '/lib')\n" + readFileSync(script, "utf8"));
} catch (err) {
  process.stdout.write(out);
  process.stderr.write(String(err && err.message ? err.message : err) + "\n");
  process.exit(1);
}
process.stdout.write(out);
