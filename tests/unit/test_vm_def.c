/* VM definitions (src/cli/vm_def.c): names, a round trip through vm.json,
 * every validation error (named with the file and the field), the atomic
 * save, sizes, and the state directory's resolution. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/vm_def.h"
#include "core/opts.h"
#include "unit.h"

#define FILE_NAME "/x/vms/web1/vm.json"

static const char *const good_json =
    "{\"format\": \"petrel-vm\", \"version\": 1, \"name\": \"web1\", \"arch\": \"riscv64\","
    " \"vcpus\": 2, \"memory_mib\": 512, \"kernel\": null, \"initrd\": null,"
    " \"firmware\": null, \"append\": \"root=/dev/vda console=ttyS0 earlycon=sbi\","
    " \"disks\": [{\"path\": \"disk0.qcow2\", \"format\": \"qcow2\", \"readonly\": false,"
    " \"serial\": null}],"
    " \"devices\": [\"virtio-rng\", \"virtio-net,hostfwd=tcp:127.0.0.1:0-:22\"],"
    " \"ssh\": {\"port\": 0, \"authorized_keys\": \"ssh-ed25519 AAAA user@host\\n\"},"
    " \"autostart\": false, \"created_utc\": \"2026-12-06T07:00:00Z\"}";

static void test_names(void)
{
    CHECK(vm_name_valid("web1"), "web1");
    CHECK(vm_name_valid("a"), "a");
    CHECK(vm_name_valid("9.x_y-z"), "9.x_y-z");
    char n63[64], n64[65];
    memset(n63, 'a', 63);
    n63[63] = 0;
    memset(n64, 'a', 64);
    n64[64] = 0;
    CHECK(vm_name_valid(n63), "63 characters");
    CHECK(!vm_name_valid(n64), "64 characters");
    static const char *const bad[] = { "", ".hidden", "-x", "_x", "a b", "a/b", "..", "a\n",
                                       "caf\xc3\xa9", "a:b", NULL };
    for (unsigned i = 0; bad[i]; i++)
        CHECK(!vm_name_valid(bad[i]), "'%s' must be invalid", bad[i]);
    CHECK(!vm_name_valid(NULL), "NULL");
}

static json_t *good(void)
{
    json_error_t je;
    json_t *j = json_loads(good_json, 0, &je);
    CHECK(j != NULL, "good_json parses: %s", je.text);
    return j;
}

static void test_round_trip(void)
{
    json_t *j = good();
    struct vm_def d;
    struct err e = { "" };
    int r = vm_def_from_json(&d, j, FILE_NAME, "web1", &e);
    CHECK(r == 0, "load: %s", e.msg);
    json_decref(j);
    if (r)
        return;
    CHECK(!strcmp(d.name, "web1") && !strcmp(d.arch, "riscv64"), "name/arch");
    EQ(d.vcpus, 2);
    EQ(d.memory_mib, 512);
    CHECK(!d.kernel && !d.initrd && !d.firmware, "nulls");
    EQ(d.ndisks, 1);
    CHECK(!strcmp(d.disks[0].path, "disk0.qcow2") && !strcmp(d.disks[0].format, "qcow2"),
          "disk0");
    EQ(d.ndevices, 2);
    CHECK(!strcmp(d.authorized_keys, "ssh-ed25519 AAAA user@host\n"), "keys");
    CHECK(!d.ssh_key_file, "key_file absent");

    /* change everything, save, load back */
    vm_def_set_str(&d.kernel, "/boot/Image");
    vm_def_set_str(&d.firmware, "none");
    vm_def_set_str(&d.ssh_key_file, "/home/u/.ssh/id_ed25519.pub");
    d.disks[1].path = strdup("/data/x,y.img");
    d.disks[1].readonly = true;
    d.disks[1].serial = strdup("data-1");
    d.ndisks = 2;
    d.vcpus = 32;
    d.memory_mib = 65536;
    d.ssh_port = 2222;
    d.autostart = true;
    char dir[] = "/tmp/petrel-vmdef-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char file[256];
    snprintf(file, sizeof(file), "%s/vm.json", dir);
    r = vm_def_save(&d, file, &e);
    CHECK(r == 0, "save: %s", e.msg);
    struct stat st;
    CHECK(stat(file, &st) == 0 && (st.st_mode & 0777) == 0600, "vm.json is 0600");
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", file, (int)getpid());
    CHECK(access(tmp, F_OK) != 0, "no temporary file left behind");
    struct vm_def b;
    r = vm_def_load(&b, file, "web1", &e);
    CHECK(r == 0, "load back: %s", e.msg);
    if (!r) {
        CHECK(!strcmp(b.kernel, "/boot/Image") && !strcmp(b.firmware, "none"), "paths");
        CHECK(!b.initrd, "initrd stays null");
        EQ(b.ndisks, 2);
        CHECK(!strcmp(b.disks[1].path, "/data/x,y.img") && b.disks[1].readonly &&
              !strcmp(b.disks[1].serial, "data-1") && !b.disks[1].format, "disk1");
        EQ(b.vcpus, 32);
        EQ(b.memory_mib, 65536);
        EQ(b.ssh_port, 2222);
        CHECK(b.autostart, "autostart");
        CHECK(!strcmp(b.ssh_key_file, "/home/u/.ssh/id_ed25519.pub"), "key_file");
        CHECK(!strcmp(b.created_utc, "2026-12-06T07:00:00Z"), "created_utc");
        CHECK(!strcmp(b.devices[1], "virtio-net,hostfwd=tcp:127.0.0.1:0-:22"), "devices");
        /* saving the reloaded one gives the same bytes */
        char file2[300];
        snprintf(file2, sizeof(file2), "%s/vm2.json", dir);
        CHECK(vm_def_save(&b, file2, &e) == 0, "save 2: %s", e.msg);
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "cmp -s %s %s", file, file2);
        CHECK(system(cmd) == 0, "save(load(save(d))) == save(d)");
        unlink(file2);
        vm_def_free(&b);
    }
    /* a definition the loader would refuse is never written */
    d.vcpus = 33;
    r = vm_def_save(&d, file, &e);
    CHECK(r == -EINVAL && strstr(e.msg, "field 'vcpus'"), "save refuses: %s", e.msg);
    r = vm_def_load(&b, file, "web1", &e);
    CHECK(r == 0 && b.vcpus == 32, "the old file is intact");
    if (!r)
        vm_def_free(&b);
    /* the directory name must match */
    r = vm_def_load(&b, file, "web2", &e);
    CHECK(r == -EINVAL && strstr(e.msg, "field 'name'") && strstr(e.msg, "web2"),
          "name mismatch: %s", e.msg);
    vm_def_free(&d);
    unlink(file);
    rmdir(dir);
}

/* Edit good_json at a JSON pointer-ish path and expect an error. */
struct bad_case {
    const char *what;
    const char *key;        /* top-level key, "ssh.x" or "disks.0.x"; NULL: whole doc */
    const char *value;      /* JSON text; NULL: delete the key */
    const char *want;       /* substring of the message */
};

static const struct bad_case bad_cases[] = {
    { "format missing", "format", NULL, "field 'format': missing" },
    { "format wrong", "format", "\"other\"", "field 'format': expected \"petrel-vm\"" },
    { "version missing", "version", NULL, "field 'version': missing" },
    { "version string", "version", "\"1\"", "field 'version': expected an integer" },
    { "version 2", "version", "2", "field 'version': version 2 is not supported" },
    { "unknown field", "colour", "\"blue\"", "field 'colour': unknown field" },
    { "name missing", "name", NULL, "field 'name': missing" },
    { "name number", "name", "5", "field 'name': expected a string" },
    { "name bad", "name", "\"a b\"", "field 'name': 'a b' is not a valid name" },
    { "name mismatch", "name", "\"web2\"", "does not match the VM's directory name 'web1'" },
    { "arch missing", "arch", NULL, "field 'arch': missing" },
    { "arch bad", "arch", "\"arm\"", "field 'arch': expected \"riscv64\" or \"x86_64\"" },
    { "vcpus missing", "vcpus", NULL, "field 'vcpus': missing" },
    { "vcpus 0", "vcpus", "0", "field 'vcpus': expected an integer 1..32" },
    { "vcpus 33", "vcpus", "33", "field 'vcpus': expected an integer 1..32" },
    { "vcpus float", "vcpus", "1.5", "field 'vcpus': expected an integer 1..32" },
    { "vcpus string", "vcpus", "\"2\"", "field 'vcpus': expected an integer 1..32" },
    { "vcpus bool", "vcpus", "true", "field 'vcpus': expected an integer 1..32" },
    { "memory small", "memory_mib", "15", "field 'memory_mib': expected an integer 16..65536" },
    { "memory big", "memory_mib", "65537", "field 'memory_mib': expected an integer" },
    { "memory negative", "memory_mib", "-1", "field 'memory_mib': expected an integer" },
    { "kernel number", "kernel", "1", "field 'kernel': expected a string or null" },
    { "kernel empty", "kernel", "\"\"", "field 'kernel': expected a non-empty string" },
    { "kernel newline", "kernel", "\"a\\nb\"", "field 'kernel': a path may not hold" },
    { "kernel NUL", "kernel", "\"a\\u0000b\"", "field 'kernel': the string holds a NUL" },
    { "initrd object", "initrd", "{}", "field 'initrd': expected a string or null" },
    { "firmware array", "firmware", "[]", "field 'firmware': expected a string or null" },
    { "append number", "append", "7", "field 'append': expected a string or null" },
    { "append newline", "append", "\"a\\nb\"", "field 'append': the command line may not" },
    { "disks object", "disks", "{}", "field 'disks': expected an array" },
    { "disk not object", "disks", "[\"disk0.qcow2\"]", "field 'disks[0]': expected an object" },
    { "disk no path", "disks", "[{}]", "field 'disks[0].path': missing" },
    { "disk path null", "disks", "[{\"path\": null}]", "field 'disks[0].path': expected a string" },
    { "disk format", "disks", "[{\"path\": \"a\", \"format\": \"vmdk\"}]",
      "field 'disks[0].format': expected \"raw\", \"qcow2\" or null" },
    { "disk readonly", "disks", "[{\"path\": \"a\", \"readonly\": \"yes\"}]",
      "field 'disks[0].readonly': expected true or false" },
    { "disk serial long", "disks", "[{\"path\": \"a\", \"serial\": \"123456789012345678901\"}]",
      "field 'disks[0].serial': expected a string of at most 20 bytes" },
    { "disk serial comma", "disks", "[{\"path\": \"a\", \"serial\": \"a,b\"}]",
      "field 'disks[0].serial': expected printable ASCII" },
    { "disk serial reserved", "disks", "[{\"path\": \"a\", \"serial\": \"petrel-config\"}]",
      "field 'disks[0].serial': 'petrel-config' is reserved" },
    { "disk unknown", "disks", "[{\"path\": \"a\"}, {\"path\": \"b\", \"size\": 1}]",
      "field 'disks[1].size': unknown field" },
    { "too many disks", "disks",
      "[{\"path\":\"a\"},{\"path\":\"a\"},{\"path\":\"a\"},{\"path\":\"a\"},{\"path\":\"a\"},"
      "{\"path\":\"a\"},{\"path\":\"a\"},{\"path\":\"a\"},{\"path\":\"a\"},{\"path\":\"a\"},"
      "{\"path\":\"a\"},{\"path\":\"a\"},{\"path\":\"a\"},{\"path\":\"a\"},{\"path\":\"a\"},"
      "{\"path\":\"a\"}]", "field 'disks': at most 15 disks" },
    { "devices string", "devices", "\"virtio-rng\"", "field 'devices': expected an array" },
    { "device number", "devices", "[\"virtio-rng\", 3]", "field 'devices[1]': expected a device" },
    { "device unknown", "devices", "[\"virtio-sound,x=1\"]",
      "field 'devices[0]': unknown device 'virtio-sound'" },
    { "device empty", "devices", "[\"\"]", "field 'devices[0]': expected a non-empty string" },
    { "too many devices", "devices",
      "[\"virtio-rng\",\"virtio-rng\",\"virtio-rng\",\"virtio-rng\",\"virtio-rng\","
      "\"virtio-rng\",\"virtio-rng\",\"virtio-rng\",\"virtio-rng\",\"virtio-rng\","
      "\"virtio-rng\",\"virtio-rng\",\"virtio-rng\",\"virtio-rng\",\"virtio-rng\","
      "\"virtio-rng\",\"virtio-rng\"]", "field 'devices': at most 16 devices" },
    { "ssh string", "ssh", "\"key\"", "field 'ssh': expected an object" },
    { "ssh port big", "ssh.port", "65536", "field 'ssh.port': expected an integer 0..65535" },
    { "ssh port string", "ssh.port", "\"22\"", "field 'ssh.port': expected an integer" },
    { "ssh keys number", "ssh.authorized_keys", "1",
      "field 'ssh.authorized_keys': expected a string" },
    { "ssh key_file number", "ssh.key_file", "1", "field 'ssh.key_file': expected a string" },
    { "ssh unknown", "ssh.user", "\"root\"", "field 'ssh.user': unknown field" },
    { "autostart string", "autostart", "\"yes\"", "field 'autostart': expected true or false" },
    { "created number", "created_utc", "5", "field 'created_utc': expected a string" },
    { "not an object", NULL, "[1, 2]", "expected a JSON object" },
    { "restore_from number", "restore_from", "5", "field 'restore_from': expected a string" },
    { "restore_from newline", "restore_from", "\"a\\nb\"",
      "field 'restore_from': a path may not hold a line break" },
    { "cloned_from string", "cloned_from", "\"web0\"",
      "field 'cloned_from': expected an object" },
    { "cloned_from no vm", "cloned_from", "{\"snapshot\": \"s1\"}",
      "field 'cloned_from.vm': missing" },
    { "cloned_from bad vm", "cloned_from", "{\"vm\": \"a b\"}",
      "field 'cloned_from.vm': not a valid VM name" },
    { "cloned_from bad tag", "cloned_from", "{\"vm\": \"web0\", \"snapshot\": \".s\"}",
      "field 'cloned_from.snapshot': not a valid snapshot tag" },
    { "cloned_from unknown", "cloned_from", "{\"vm\": \"web0\", \"when\": 1}",
      "field 'cloned_from.when': unknown field" },
};

static void test_bad(void)
{
    for (unsigned i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *b = &bad_cases[i];
        json_t *j = good(), *target = j;
        if (!j)
            return;
        if (!b->key) {
            json_decref(j);
            j = target = json_loads(b->value, 0, NULL);
        } else {
            char key[64];
            snprintf(key, sizeof(key), "%s", b->key);
            char *dot = strchr(key, '.');
            const char *leaf = key;
            if (dot) {
                *dot = 0;
                target = json_object_get(j, key);
                leaf = dot + 1;
            }
            if (b->value) {
                json_error_t je;
                json_t *v = json_loads(b->value, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
                CHECK(v != NULL, "%s: test value parses: %s", b->what, je.text);
                json_object_set_new(target, leaf, v);
            } else {
                json_object_del(target, leaf);
            }
        }
        struct vm_def d;
        struct err e = { "" };
        int r = vm_def_from_json(&d, j, FILE_NAME, "web1", &e);
        CHECK(r == -EINVAL, "%s: r=%d", b->what, r);
        CHECK(strstr(e.msg, b->want) != NULL, "%s: message '%s' lacks '%s'", b->what, e.msg,
              b->want);
        CHECK(!strncmp(e.msg, FILE_NAME ": ", strlen(FILE_NAME) + 2),
              "%s: message names the file: '%s'", b->what, e.msg);
        if (r == 0)
            vm_def_free(&d);
        json_decref(j);
    }
}

static void test_defaults_x86(void)
{
    /* optional fields may be left out; x86_64 allows 64 vCPUs */
    json_t *j = json_loads("{\"format\":\"petrel-vm\",\"version\":1,\"name\":\"k\","
                           "\"arch\":\"x86_64\",\"vcpus\":64,\"memory_mib\":16}", 0, NULL);
    struct vm_def d;
    struct err e = { "" };
    int r = vm_def_from_json(&d, j, "f", NULL, &e);
    CHECK(r == 0, "minimal definition: %s", e.msg);
    if (!r) {
        EQ(d.vcpus, 64);
        EQ(d.ndisks, 0);
        EQ(d.ndevices, 0);
        CHECK(d.authorized_keys && !d.authorized_keys[0], "keys default to empty");
        CHECK(!d.autostart && !d.append, "defaults");
        vm_def_free(&d);
    }
    json_object_set_new(j, "vcpus", json_integer(65));
    r = vm_def_from_json(&d, j, "f", NULL, &e);
    CHECK(r == -EINVAL && strstr(e.msg, "expected an integer 1..64"), "x86 65: %s", e.msg);
    json_decref(j);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_load_files(void)
{
    char dir[] = "/tmp/petrel-vmdef-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char file[256];
    snprintf(file, sizeof(file), "%s/vm.json", dir);
    struct vm_def d;
    struct err e = { "" };
    int r = vm_def_load(&d, file, NULL, &e);
    CHECK(r == -ENOENT && strstr(e.msg, file) && strstr(e.msg, "No such file"), "missing: %s",
          e.msg);
    write_text(file, "{\"format\": \"petrel-vm\",\n \"version\": 1,\n \"name\": }\n");
    r = vm_def_load(&d, file, NULL, &e);
    CHECK(r == -EINVAL && strstr(e.msg, file) && strstr(e.msg, "invalid JSON at line 3"),
          "corrupt: %s", e.msg);
    write_text(file, "");
    r = vm_def_load(&d, file, NULL, &e);
    CHECK(r == -EINVAL && strstr(e.msg, "invalid JSON"), "empty: %s", e.msg);
    write_text(file, "{\"format\": \"petrel-vm\", \"format\": \"petrel-vm\"}");
    r = vm_def_load(&d, file, NULL, &e);
    CHECK(r == -EINVAL && strstr(e.msg, "duplicate"), "duplicate key: %s", e.msg);
    /* too large: refused before parsing */
    FILE *f = fopen(file, "w");
    if (f) {
        fputc('"', f);
        for (unsigned i = 0; i < VM_DEF_MAX_FILE; i++)
            fputc('a', f);
        fputc('"', f);
        fclose(f);
    }
    r = vm_def_load(&d, file, NULL, &e);
    CHECK(r == -EFBIG && strstr(e.msg, "too large"), "too large: %s", e.msg);
    unlink(file);
    /* a directory is not a definition */
    mkdir(file, 0700);
    r = vm_def_load(&d, file, NULL, &e);
    CHECK(r < 0, "a directory: %s", e.msg);
    rmdir(file);
    rmdir(dir);
}

static void test_state_dir(void)
{
    char buf[4096];
    struct err e = { "" };
    CHECK(vm_state_dir_resolve(buf, sizeof(buf), "/srv/petrel", 1000, "/home/u", &e) == 0 &&
          !strcmp(buf, "/srv/petrel"), "PETREL_HOME wins: %s", buf);
    CHECK(vm_state_dir_resolve(buf, sizeof(buf), "/srv/petrel//", 0, NULL, &e) == 0 &&
          !strcmp(buf, "/srv/petrel"), "trailing slashes dropped: %s", buf);
    CHECK(vm_state_dir_resolve(buf, sizeof(buf), "", 0, "/root", &e) == 0 &&
          !strcmp(buf, "/var/lib/petrel"), "root: %s", buf);
    CHECK(vm_state_dir_resolve(buf, sizeof(buf), NULL, 0, "/root", &e) == 0 &&
          !strcmp(buf, "/var/lib/petrel"), "root, unset: %s", buf);
    CHECK(vm_state_dir_resolve(buf, sizeof(buf), NULL, 1000, "/home/u", &e) == 0 &&
          !strcmp(buf, "/home/u/.local/share/petrel"), "user: %s", buf);
    CHECK(vm_state_dir_resolve(buf, sizeof(buf), NULL, 1000, "", &e) == -ENOENT &&
          strstr(e.msg, "PETREL_HOME"), "no home: %s", e.msg);
    CHECK(vm_state_dir_resolve(buf, 8, "/a/long/path", 0, NULL, &e) == -ENAMETOOLONG,
          "too long");

    /* vm_state_dir creates it (and vms/) 0700, and returns it absolute */
    char base[] = "/tmp/petrel-home-XXXXXX";
    CHECK(mkdtemp(base) != NULL, "mkdtemp");
    char home[300], cwd[4096];
    snprintf(home, sizeof(home), "%s/a/b", base);
    setenv("PETREL_HOME", home, 1);
    CHECK(vm_state_dir(buf, sizeof(buf), &e) == 0 && !strcmp(buf, home), "created: %s %s", buf,
          e.msg);
    struct stat st;
    char vms[400];
    snprintf(vms, sizeof(vms), "%s/vms", home);
    CHECK(stat(home, &st) == 0 && (st.st_mode & 0777) == 0700, "state dir 0700");
    CHECK(stat(vms, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700,
          "vms/ 0700");
    /* a relative $PETREL_HOME comes back absolute */
    CHECK(getcwd(cwd, sizeof(cwd)) != NULL, "getcwd");
    CHECK(chdir(base) == 0, "chdir");
    setenv("PETREL_HOME", "a/b", 1);
    CHECK(vm_state_dir(buf, sizeof(buf), &e) == 0 && !strcmp(buf, home), "relative: %s", buf);
    CHECK(chdir(cwd) == 0, "chdir back");
    /* a file in the way */
    char filep[400];
    snprintf(filep, sizeof(filep), "%s/file", base);
    write_text(filep, "x");
    setenv("PETREL_HOME", filep, 1);
    CHECK(vm_state_dir(buf, sizeof(buf), &e) < 0 && strstr(e.msg, filep), "file: %s", e.msg);
    unsetenv("PETREL_HOME");
    unlink(filep);
    rmdir(vms);
    rmdir(home);
    snprintf(home, sizeof(home), "%s/a", base);
    rmdir(home);
    rmdir(base);
}

static void test_sizes(void)
{
    uint64_t v = 0;
    CHECK(opts_size("512", 20, &v) == 0 && v == 512ull << 20, "bare MiB");
    CHECK(opts_size("512", 0, &v) == 0 && v == 512, "bare bytes");
    CHECK(opts_size("8G", 0, &v) == 0 && v == 8ull << 30, "8G");
    CHECK(opts_size("2GiB", 0, &v) == 0 && v == 2ull << 30, "2GiB");
    CHECK(opts_size("64K", 20, &v) == 0 && v == 64ull << 10, "64K");
    CHECK(opts_size("1T", 0, &v) == 0 && v == 1ull << 40, "1T");
    CHECK(opts_size("", 0, &v) == -EINVAL, "empty");
    CHECK(opts_size("-1", 0, &v) == -EINVAL, "negative");
    CHECK(opts_size("1X", 0, &v) == -EINVAL, "suffix");
    CHECK(opts_size("1GG", 0, &v) == -EINVAL, "junk");
    CHECK(opts_size("99999999999999T", 0, &v) == -ERANGE, "overflow");
    EQ(vm_def_max_cpus("riscv64"), 32);
    EQ(vm_def_max_cpus("x86_64"), 64);
    EQ(vm_def_max_cpus("arm"), 0);
}

/* A clone's fields (`petrel vm clone`): absent unless set, kept on a round
 * trip; snapshot tags. */
static void test_clone_fields(void)
{
    json_t *j = good();
    struct vm_def d;
    struct err e = { "" };
    int r = vm_def_from_json(&d, j, FILE_NAME, "web1", &e);
    CHECK(r == 0 && !d.restore_from && !d.cloned_from_vm, "no clone fields: %s", e.msg);
    json_t *out = r == 0 ? vm_def_to_json(&d) : NULL;
    CHECK(out && !json_object_get(out, "restore_from") && !json_object_get(out, "cloned_from"),
          "not written when unset");
    json_decref(out);
    if (r == 0)
        vm_def_free(&d);
    json_object_set_new(j, "restore_from", json_string("restore"));
    json_object_set_new(j, "cloned_from", json_pack("{s:s, s:s}", "vm", "web0", "snapshot",
                                                    "s-1.x_y"));
    r = vm_def_from_json(&d, j, FILE_NAME, "web1", &e);
    CHECK(r == 0 && d.restore_from && !strcmp(d.restore_from, "restore") &&
          !strcmp(d.cloned_from_vm, "web0") && !strcmp(d.cloned_from_snapshot, "s-1.x_y"),
          "clone fields load: %s", e.msg);
    out = r == 0 ? vm_def_to_json(&d) : NULL;
    CHECK(out && json_equal(json_object_get(out, "cloned_from"),
                            json_object_get(j, "cloned_from")) &&
          !strcmp(json_string_value(json_object_get(out, "restore_from")), "restore"),
          "and are written back");
    json_decref(out);
    if (r == 0)
        vm_def_free(&d);
    /* a cold copy: no snapshot */
    json_object_set_new(j, "cloned_from", json_pack("{s:s, s:n}", "vm", "web0", "snapshot"));
    r = vm_def_from_json(&d, j, FILE_NAME, "web1", &e);
    CHECK(r == 0 && !d.cloned_from_snapshot, "snapshot null: %s", e.msg);
    if (r == 0)
        vm_def_free(&d);
    json_decref(j);

    static const char *const ok[] = { "s1", "snap-20261206-070000", "a.b_c-d", "_x", "9", NULL };
    static const char *const bad[] = { "", ".x", "-x", "a/b", "a b", "caf\xc3\xa9", "..", NULL };
    for (unsigned i = 0; ok[i]; i++)
        CHECK(vm_tag_valid(ok[i]), "tag '%s'", ok[i]);
    for (unsigned i = 0; bad[i]; i++)
        CHECK(!vm_tag_valid(bad[i]), "tag '%s' must be invalid", bad[i]);
    char t64[66];
    memset(t64, 'a', 65);
    t64[64] = 0;
    CHECK(vm_tag_valid(t64), "64 characters");
    t64[64] = 'a';
    t64[65] = 0;
    CHECK(!vm_tag_valid(t64), "65 characters");
    CHECK(!vm_tag_valid(NULL), "NULL");
}

int main(void)
{
    test_names();
    test_round_trip();
    test_bad();
    test_clone_fields();
    test_defaults_x86();
    test_load_files();
    test_state_dir();
    test_sizes();
    return unit_done("test_vm_def");
}
