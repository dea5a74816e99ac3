/* petrel: command-line entry, subcommand dispatch only. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#include "core/version.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: petrel <command> [options]\n"
            "\n"
            "commands:\n"
            "  run        boot a virtual machine (see 'petrel run --help')\n"
            "  img        create, inspect, check and convert disk images (see\n"
            "             'petrel img --help')\n"
            "  serve      serve a REST API, serial consoles and web pages over the VMs\n"
            "             of 'petrel vm' (see 'petrel serve --help')\n"
            "  switch     run a private VM-to-VM network (see 'petrel switch --help')\n"
            "  vm         create, start, list and manage VMs kept as files, running in\n"
            "             the background (see 'petrel vm --help')\n"
            "\n"
            "Firecracker's command line also works (petrel --api-sock PATH --id ID ..., or\n"
            "petrel installed as 'firecracker'): it is 'petrel run' with those flags.\n"
            "\n"
            "options:\n"
            "  -h, --help     show this help\n"
            "  --version      print the version\n");
}

/* Firecracker's command line (`firecracker --api-sock P --id ID ...`): a
 * Firecracker client pointed at the petrel binary, or petrel installed as
 * `firecracker`, runs a VMM as `petrel run` would. */
static bool firecracker_style(int argc, char **argv)
{
    static const char *const flags[] = {
        "--api-sock", "--config-file", "--id", "--no-api", "--seccomp-level", "--no-seccomp",
        "--level", "--log-path", "--show-level", "--show-log-origin", "--boot-timer",
        "--metrics-path",
    };
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    if (!strcmp(base, "firecracker"))
        return true;
    for (unsigned i = 0; argc >= 2 && i < sizeof(flags) / sizeof(flags[0]); i++) {
        size_t n = strlen(flags[i]);
        if (!strncmp(argv[1], flags[i], n) && (argv[1][n] == 0 || argv[1][n] == '='))
            return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    if (firecracker_style(argc, argv))
        return cli_run(argc, argv);
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        printf("\n");
        cli_run_usage();
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("petrel %s\n", PETREL_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "run"))
        return cli_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "img"))
        return cli_img(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve"))
        return cli_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "switch"))
        return cli_switch(argc - 1, argv + 1);
    if (!strcmp(cmd, "vm"))
        return cli_vm(argc - 1, argv + 1);
    fprintf(stderr, "petrel: unknown command '%s' (try 'petrel --help')\n", cmd);
    return 1;
}
