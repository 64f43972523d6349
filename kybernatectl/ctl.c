/* SPDX-License-Identifier: Apache-2.0 */
#include <assert.h>
#include <stdarg.h>

#include "ctl-json.h"
#include "ctl.h"

int ctl_usage_error(const char *verb, const char *fmt, ...) {
        va_list ap;
        fprintf(stderr, "kybernatectl: %s%s", verb ? verb : "", verb ? ": " : "");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nTry 'kybernatectl %s%s--help'.\n", verb ? verb : "", verb ? " " : "");
        return CTL_EXIT_USAGE;
}

/* "  -k, --name METAVAR" or "      --name METAVAR", padded to 27 columns, two
 * spaces and the description. */
static void help_line(int key, const char *name, const char *metavar, const char *text) {
        char left[80];
        snprintf(left, sizeof(left), "  %c%c%c --%s%s%s", key ? '-' : ' ', key ? key : ' ', key ? ',' : ' ',
                 name, metavar ? " " : "", metavar ? metavar : "");
        printf("%-27s  %s\n", left, text);
}

void ctl_verb_help(const CtlVerb *v) {
        printf("Usage: kybernatectl %s %s\n\n%s\n\n%s", v->name, v->args, v->summary,
               v->intro ? v->intro : "");
        if ((v->options && v->options->name) || v->json)
                printf("Options:\n");
        for (const CtlOption *o = v->options; o && o->name; o++)
                help_line(o->has_short && o->has_short != CTL_SHORT_UNLISTED ? o->key : 0, o->name,
                          o->metavar, o->help);
        if (v->json)
                help_line(0, "json", NULL, v->json);
}

static int option_store(const CtlVerb *v, int key, char *arg, void *userdata) {
        for (const CtlOption *o = v->options; o && o->name; o++) {
                if (o->key != key || o->at == 0)
                        continue;
                char *p = (char *)userdata + o->at - 1;
                if (o->metavar)
                        *(char **)p = arg;
                else
                        *(bool *)p = true;
                return -1;
        }
        return v->option ? v->option(key, arg, userdata) : CTL_EXIT_USAGE;
}

int ctl_parse_options(Ctl *ctl, const CtlVerb *v, int argc, char **argv, void *userdata) {
        struct option longopts[CTL_OPTIONS_MAX + 3] = {
                {"help", no_argument, NULL, 'h'},
                {"json", no_argument, NULL, 'J'},
        };
        char shortopts[2 * CTL_OPTIONS_MAX + 2] = "h";
        size_t n = 2, s = 1;
        for (const CtlOption *o = v->options; o && o->name; o++) {
                assert(n < CTL_OPTIONS_MAX + 2);
                longopts[n++] =
                        (struct option){o->name, o->metavar ? required_argument : no_argument, NULL, o->key};
                if (o->has_short) {
                        shortopts[s++] = (char)o->key;
                        if (o->metavar)
                                shortopts[s++] = ':';
                }
        }

        int c;
        optind = 0; /* full reinitialisation of getopt for this verb's argv */
        while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        ctl_verb_help(v);
                        return CTL_EXIT_OK;
                case 'J':
                        ctl->json = true;
                        break;
                case '?':
                        return ctl_usage_error(v->name, "invalid option");
                default: {
                        int x = option_store(v, c, optarg, userdata);
                        if (x >= 0)
                                return x;
                }
                }
        }
        if (v->n_args == 0 && optind < argc)
                return ctl_usage_error(v->name, "unexpected argument '%s'", argv[optind]);
        if ((v->n_args > 0 && argc - optind != v->n_args) || (v->n_args == -1 && optind >= argc))
                return ctl_usage_error(v->name, "%s", v->args_error);
        return -1;
}

const char *ctl_socket(const Ctl *ctl) {
        return ctl->socket_path ? ctl->socket_path : kyb_socket_path();
}

int ctl_connect(const Ctl *ctl, KybClient **ret) {
        const char *path = ctl_socket(ctl);
        int r = kyb_client_connect(path, ret);
        if (r >= 0)
                return CTL_EXIT_OK;
        if (r == -EACCES || r == -EPERM) {
                ERR("permission denied (cannot connect to %s): %s\n"
                    "Run as root or as a member of the group kybernated allows.\n",
                    path, strerror(-r));
                return CTL_EXIT_DENIED;
        }
        ERR("kybernated is not running (cannot connect to %s): %s\n", path, strerror(-r));
        return CTL_EXIT_UNREACHABLE;
}

int ctl_unexpected(const char *verb) {
        ERR("%s: unexpected answer from kybernated\n", verb);
        return CTL_EXIT_FAILED;
}

const Kybernate__V1__CheckpointInfo *ctl_response_info(const Kybernate__V1__Response *resp,
                                                       Kybernate__V1__Response__ResultCase result) {
        if (!resp || resp->result_case != result)
                return NULL;
        switch (result) {
        case KYBERNATE__V1__RESPONSE__RESULT_DELETE:
                return resp->delete_->info;
        case KYBERNATE__V1__RESPONSE__RESULT_PIN:
                return resp->pin->info;
        case KYBERNATE__V1__RESPONSE__RESULT_CHECKPOINT:
                return resp->checkpoint->info;
        case KYBERNATE__V1__RESPONSE__RESULT_EXPORT:
                return resp->export->info;
        case KYBERNATE__V1__RESPONSE__RESULT_IMPORT:
                return resp->import->info;
        default:
                return NULL;
        }
}

int ctl_call_info(const Ctl *ctl, const char *verb, Kybernate__V1__Request__OpCase op, void *payload,
                  Kybernate__V1__Response__ResultCase result, Kybernate__V1__Response **ret,
                  const Kybernate__V1__CheckpointInfo **ret_info) {
        int x = ctl_call(ctl, verb, op, payload, KYBERNATE__V1__RESPONSE__RESULT__NOT_SET, ret);
        if (x != CTL_EXIT_OK)
                return x;
        *ret_info = ctl_response_info(*ret, result);
        return CTL_EXIT_OK;
}

int ctl_call_full(const Ctl *ctl, const char *verb, Kybernate__V1__Request__OpCase op, void *payload,
                  Kybernate__V1__Response__ResultCase expect, KybMessageFn on_message, void *userdata,
                  Kybernate__V1__Response **ret) {
        _cleanup_(kyb_client_freep) KybClient *c = NULL;
        Kybernate__V1__Response *resp = NULL;
        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        req.op_case = op;
        /* Every member of the oneof is a pointer to a request message, all at
         * one place: setting one sets the one op_case names. */
        req.checkpoint = payload;

        int x = ctl_connect(ctl, &c);
        if (x != CTL_EXIT_OK)
                return x;
        int r = kyb_client_call(c, &req, on_message, userdata, &resp);
        if (r >= 0) {
                if (!resp) {
                        ERR("%s: kybernated sent no answer\n", verb);
                        return CTL_EXIT_FAILED;
                }
                if (expect != KYBERNATE__V1__RESPONSE__RESULT__NOT_SET && resp->result_case != expect) {
                        kyb_response_free(resp);
                        return ctl_unexpected(verb);
                }
                *ret = resp;
                return CTL_EXIT_OK;
        }
        if (resp) {
                _cleanup_free_ char *m = strdup_printable(resp->message);
                ERR("%s: %s%s(%s)\n", verb, m ? m : "", m && *m ? " " : "", strerror(-r));
                kyb_response_free(resp);
                return ctl_exit_code(r);
        }
        if (r == -ECONNRESET || r == -EPIPE) {
                ERR("%s: kybernated closed the connection (%s)\n", verb, ctl_socket(ctl));
                return CTL_EXIT_UNREACHABLE;
        }
        ERR("%s: talking to kybernated failed: %s\n", verb, strerror(-r));
        return CTL_EXIT_FAILED;
}

int ctl_print_json(cJSON *j) {
        return ctl_json_print(j) < 0 ? CTL_EXIT_FAILED : CTL_EXIT_OK;
}

int ctl_print_checkpoint_json(const Kybernate__V1__CheckpointInfo *info) {
        return ctl_print_json(ctl_json_checkpoint(info));
}

int ctl_print_checkpoint_done(const Ctl *ctl, const Kybernate__V1__CheckpointInfo *info, const char *prefix,
                              const char *fallback) {
        if (ctl->json && info)
                return ctl_print_checkpoint_json(info);
        ctl_print_line(prefix, info ? info->id : fallback);
        return CTL_EXIT_OK;
}

void ctl_print_line(const char *prefix, const char *s) {
        _cleanup_free_ char *p = strdup_printable(s);
        printf("%s%s\n", prefix, p ? p : "");
}

void ctl_kv(const char *key, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *v = strdup_vprintf(fmt, ap);
        va_end(ap);
        _cleanup_free_ char *p = strdup_printable(v);
        printf("%-16s %s\n", key, p ? p : "");
}

const char *or_dash(const char *s) {
        return isempty(s) ? "-" : s;
}

char *short_id(char *buf, size_t size, const char *id) {
        snprintf(buf, size, "%.12s", id ? id : "");
        return buf;
}
