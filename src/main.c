/* petrel: command-line entry, subcommand dispatch only. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#define PETREL_VERSION "0.1.0"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: petrel <command> [options]\n"
            "\n"
            "commands:\n"
            "  run        boot a virtual machine (see 'petrel run --help')\n"
            "  img        create, inspect, check and convert disk images (see\n"
            "             'petrel img --help')\n"
            "  switch     run a private VM-to-VM network (see 'petrel switch --help')\n"
            "  vm         create, start, list and manage VMs kept as files, running in\n"
            "             the background (see 'petrel vm --help')\n"
            "\n"
            "options:\n"
            "  -h, --help     show this help\n"
            "  --version      print the version\n");
}

int main(int argc, char **argv)
{
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
    if (!strcmp(cmd, "switch"))
        return cli_switch(argc - 1, argv + 1);
    if (!strcmp(cmd, "vm"))
        return cli_vm(argc - 1, argv + 1);
    fprintf(stderr, "petrel: unknown command '%s' (try 'petrel --help')\n", cmd);
    return 1;
}
