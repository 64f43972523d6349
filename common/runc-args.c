/* SPDX-License-Identifier: Apache-2.0 */
#include "runc-args.h"
#include "util.h"

void argv_add(Argv *a, const char *s) {
        if (a->error < 0)
                return;
        if (!s) {
                a->error = -EINVAL;
                return;
        }
        if (a->n + 1 >= a->cap) { /* room for s and the terminating NULL */
                size_t cap = a->cap ? a->cap * 2 : 16;
                char **v = reallocarray(a->v, cap, sizeof(*v));
                if (!v) {
                        a->error = -ENOMEM;
                        return;
                }
                a->v = v;
                a->cap = cap;
        }
        a->v[a->n++] = (char *)s;
        a->v[a->n] = NULL;
}

void argv_add_value(Argv *a, const char *opt, const char *value) {
        if (!value)
                return;
        argv_add(a, opt);
        argv_add(a, value);
}

void argv_add_flag(Argv *a, const char *opt, bool on) {
        if (on)
                argv_add(a, opt);
}

void argv_add_strv(Argv *a, char *const *l) {
        for (char *const *s = l; s && *s; s++)
                argv_add(a, *s);
}

void argv_done(Argv *a) {
        free(a->v);
        *a = (Argv){};
}

int argv_take(Argv *a, char ***ret) {
        int r = a->error;
        if (r >= 0 && a->n == 0)
                r = -EINVAL; /* an empty list runs nothing */
        if (r < 0) {
                argv_done(a);
                return r;
        }
        *ret = TAKE_PTR(a->v);
        argv_done(a);
        return 0;
}

void runc_add_global(Argv *a, const RuncGlobalOptions *g) {
        argv_add(a, g->binary ? g->binary : RUNC_BINARY);
        argv_add_value(a, "--root", g->root);
        argv_add_value(a, "--log", g->log_path);
        argv_add_value(a, "--log-format", g->log_format);
        argv_add_value(a, "--criu", g->criu);
        argv_add_flag(a, "--systemd-cgroup", g->systemd_cgroup);
}

static void add_criu(Argv *a, const RuncCriuOptions *o) {
        /* runc's default image path is the current directory: never wanted here. */
        if (!o->image_path) {
                argv_add(a, NULL);
                return;
        }
        argv_add_value(a, "--image-path", o->image_path);
        argv_add_value(a, "--work-path", o->work_path);
        argv_add_flag(a, "--tcp-established", o->tcp_established);
        argv_add_flag(a, "--ext-unix-sk", o->ext_unix_sk);
        argv_add_flag(a, "--shell-job", o->shell_job);
        argv_add_flag(a, "--file-locks", o->file_locks);
        for (char *const *ns = o->empty_ns; ns && *ns; ns++)
                argv_add_value(a, "--empty-ns", *ns);
}

void runc_add_checkpoint(Argv *a, const RuncCheckpointOptions *o, const char *id) {
        argv_add(a, "checkpoint");
        add_criu(a, &o->criu);
        argv_add_flag(a, "--leave-running", o->leave_running);
        argv_add(a, id);
}

void runc_add_restore(Argv *a, const RuncRestoreOptions *o, const char *id) {
        argv_add(a, "restore");
        add_criu(a, &o->criu);
        argv_add_value(a, "--bundle", o->bundle);
        argv_add_value(a, "--pid-file", o->pid_file);
        argv_add_value(a, "--console-socket", o->console_socket);
        argv_add_flag(a, "--detach", o->detach);
        argv_add_flag(a, "--no-pivot", o->no_pivot);
        argv_add_flag(a, "--no-subreaper", o->no_subreaper);
        argv_add(a, id);
}

int runc_argv(const RuncGlobalOptions *g, char *const *args, char ***ret) {
        Argv a = {};
        runc_add_global(&a, g);
        argv_add_strv(&a, args);
        return argv_take(&a, ret);
}
