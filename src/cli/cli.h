#ifndef PETREL_CLI_H
#define PETREL_CLI_H

int cli_run(int argc, char **argv);
/* `petrel img`: image tools (src/cli/img.c). */
int cli_img(int argc, char **argv);
void cli_img_usage(void);
void cli_run_usage(void);
/* `petrel switch`: a private network's switch (src/cli/switch.c). */
int cli_switch(int argc, char **argv);
void cli_switch_usage(void);
/* `petrel vm`: VMs kept as files, run in the background (src/cli/vm.c). */
int cli_vm(int argc, char **argv);
void cli_vm_usage(void);

/* `petrel serve`: the web server over the VMs (src/cli/serve.c). */
int cli_serve(int argc, char **argv);
void cli_serve_usage(void);

#endif
