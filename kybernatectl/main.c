/* SPDX-License-Identifier: Apache-2.0 */
/* kybernatectl: the operator's CLI over the kybernated socket. The global
 * options and the table of verbs; each verb is in its own file. */
#include "ctl.h"

static const CtlVerb *const verbs[] = {
        &ctl_verb_list,       &ctl_verb_inspect, &ctl_verb_delete,  &ctl_verb_prune, &ctl_verb_pin,
        &ctl_verb_unpin,      &ctl_verb_export,  &ctl_verb_import,  &ctl_verb_push,  &ctl_verb_pull,
        &ctl_verb_checkpoint, &ctl_verb_status,  &ctl_verb_resolve,
};

static const CtlVerb *verb_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i]->name, name))
                        return verbs[i];
        return NULL;
}

static void help(void) {
        printf("Usage: kybernatectl [--socket PATH] [--json] VERB [OPTIONS] [ARGS]\n\n"
               "The operator's CLI of kybernated, the node's checkpoint daemon.\n\n"
               "Verbs:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                printf("  %-11s %s\n", verbs[i]->name, verbs[i]->summary);
        }
        printf("\nGlobal options:\n"
               "  -s, --socket PATH          daemon socket (default $%s or %s)\n"
               "      --json                 machine-readable output\n"
               "  -h, --help                 this help; `kybernatectl VERB --help` for a verb\n"
               "      --version              print the version\n"
               "\nExit codes:\n"
               "  0  success\n"
               "  1  the operation failed\n"
               "  2  usage error or invalid argument\n"
               "  3  kybernated is not running or not reachable\n"
               "  4  no such checkpoint\n"
               "  5  permission denied\n"
               "  6  conflict: ambiguous reference, name taken, file exists, busy\n",
               KYB_SOCKET_ENV, KYB_SOCKET_DEFAULT);
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                {"socket", required_argument, NULL, 's'},
                {"json", no_argument, NULL, 'J'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {},
        };
        Ctl ctl = {};
        int c;

        /* '+': stop at the verb; its options are parsed by the verb. */
        while ((c = getopt_long(argc, argv, "+s:h", opts, NULL)) >= 0) {
                switch (c) {
                case 's':
                        ctl.socket_path = optarg;
                        break;
                case 'J':
                        ctl.json = true;
                        break;
                case 'h':
                        help();
                        return CTL_EXIT_OK;
                case 'V':
                        printf("kybernatectl %s\n", KYB_VERSION);
                        return CTL_EXIT_OK;
                default:
                        return ctl_usage_error(NULL, "invalid option");
                }
        }
        if (optind >= argc) {
                help();
                return CTL_EXIT_USAGE;
        }
        const char *name = argv[optind];
        if (streq(name, "help")) {
                const CtlVerb *v = optind + 1 < argc ? verb_find(argv[optind + 1]) : NULL;
                if (v) {
                        ctl_verb_help(v);
                        return CTL_EXIT_OK;
                }
                help();
                return CTL_EXIT_OK;
        }
        const CtlVerb *v = verb_find(name);
        if (!v)
                return ctl_usage_error(NULL, "unknown verb '%s'", name);
        return v->run(&ctl, v, argc - optind, argv + optind);
}
