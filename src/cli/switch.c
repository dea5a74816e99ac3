/* `petrel switch NAME [--cidr CIDR] [--nat]`: run the switch of a private
 * VM-to-VM network in the foreground until SIGINT/SIGTERM (design in
 * net/switch.h).  Prints one line "petrel switch: NAME on PATH (CIDR...)"
 * on stdout once VMs can join, so scripts can wait for it. */
#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "net/net.h"
#include "net/switch.h"

#define DEFAULT_CIDR "10.10.0.0/24"

static volatile int stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

void cli_switch_usage(void)
{
    printf(
        "usage: petrel switch NAME [--cidr CIDR] [--nat] [-v]\n"
        "\n"
        "Run the switch of the private network NAME in the foreground (no root needed).\n"
        "VMs join it with --device virtio-net,net=private,name=NAME; they reach each\n"
        "other and get addresses by DHCP (gateway .2, DNS .3, leases from .15), and\n"
        "nothing else unless --nat.  The socket is $XDG_RUNTIME_DIR/petrel/NAME.sock,\n"
        "else /tmp/petrel-$UID/NAME.sock (directory mode 0700: only this user's VMs).\n"
        "\n"
        "options:\n"
        "  --cidr CIDR    the network (default " DEFAULT_CIDR "; at least a /28)\n"
        "  --nat          outbound NAT to the host and beyond (as net=user; the gateway\n"
        "                 .2 reaches the host's loopback)\n"
        "  -v, --verbose  log VMs joining and leaving\n"
        "  -h, --help     show this help\n"
        "\n"
        "Stop it with Ctrl-C or SIGTERM (exit status 0).\n");
}

int cli_switch(int argc, char **argv)
{
    static const struct option opts[] = {
        { "cidr", required_argument, NULL, 'c' },
        { "nat", no_argument, NULL, 'n' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *cidr = DEFAULT_CIDR;
    struct net_switch_config cfg = { 0 };
    int o, verbose = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":hv", opts, NULL)) != -1) {
        switch (o) {
        case 'c': cidr = optarg; break;
        case 'n': cfg.nat = true; break;
        case 'v': verbose++; break;
        case 'h': cli_switch_usage(); return 0;
        case ':':
            fprintf(stderr, "petrel switch: %s needs an argument\n", argv[optind - 1]);
            return 1;
        default:
            fprintf(stderr, "petrel switch: unknown option '%s' (try 'petrel switch --help')\n",
                    argv[optind - 1]);
            return 1;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "petrel switch: expected one network NAME (try 'petrel switch "
                "--help')\n");
        return 1;
    }
    cfg.name = argv[optind];
    struct err e;
    if (net_switch_name_check(cfg.name, &e) < 0) {
        fprintf(stderr, "petrel switch: %s\n", e.msg);
        return 1;
    }
    if (net_cidr_parse(cidr, &cfg.network, &cfg.netmask, &e) < 0) {
        fprintf(stderr, "petrel switch: --cidr %s\n", e.msg);
        return 1;
    }
    log_set_verbose(verbose);
    struct net_switch *sw;
    if (net_switch_new(&cfg, &sw, &e) < 0) {
        fprintf(stderr, "petrel switch: %s\n", e.msg);
        return 1;
    }
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    printf("petrel switch: %s on %s (%s%s)\n", cfg.name, net_switch_path(sw), cidr,
           cfg.nat ? ", NAT" : ", isolated");
    fflush(stdout);
    int ret = net_switch_run(sw, &stop_flag);
    net_switch_free(sw);
    if (ret < 0) {
        fprintf(stderr, "petrel switch: event loop failed: %s\n", strerror(-ret));
        return 1;
    }
    return 0;
}
