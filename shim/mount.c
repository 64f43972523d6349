/* SPDX-License-Identifier: Apache-2.0 */
#include <sys/mount.h>

#include "mount-util.h"
#include "mount.h"
#include "util.h"

#define MOUNT_DATA_MAX 4096 /* mount(2) takes at most a page of data */
#define UNMOUNT_MAX_LAYERS 64

static const struct {
        const char *name;
        bool clear;
        unsigned long flag;
} flag_table[] = {
        {"async", true, MS_SYNCHRONOUS},
        {"atime", true, MS_NOATIME},
        {"bind", false, MS_BIND},
        {"defaults", false, 0},
        {"dev", true, MS_NODEV},
        {"diratime", true, MS_NODIRATIME},
        {"dirsync", false, MS_DIRSYNC},
        {"exec", true, MS_NOEXEC},
        {"mand", false, MS_MANDLOCK},
        {"noatime", false, MS_NOATIME},
        {"nodev", false, MS_NODEV},
        {"nodiratime", false, MS_NODIRATIME},
        {"noexec", false, MS_NOEXEC},
        {"nomand", true, MS_MANDLOCK},
        {"norelatime", true, MS_RELATIME},
        {"nostrictatime", true, MS_STRICTATIME},
        {"nosuid", false, MS_NOSUID},
        {"rbind", false, MS_BIND | MS_REC},
        {"relatime", false, MS_RELATIME},
        {"remount", false, MS_REMOUNT},
        {"ro", false, MS_RDONLY},
        {"rw", true, MS_RDONLY},
        {"strictatime", false, MS_STRICTATIME},
        {"suid", true, MS_NOSUID},
        {"sync", false, MS_SYNCHRONOUS},
};

static const struct {
        const char *name;
        unsigned long flag;
} propagation_table[] = {
        {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
        {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
        {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
        {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

int mount_parse_options(char *const *options, size_t n, unsigned long *ret_flags,
                        unsigned long *ret_propagation, char **ret_data) {
        unsigned long flags = 0, propagation = 0;
        char data[MOUNT_DATA_MAX] = "";
        size_t dlen = 0;

        for (size_t i = 0; i < n; i++) {
                const char *o = options[i];
                bool known = false;

                for (size_t j = 0; j < ELEMENTSOF(flag_table) && !known; j++)
                        if (streq(o, flag_table[j].name)) {
                                known = true;
                                if (flag_table[j].clear)
                                        flags &= ~flag_table[j].flag;
                                else
                                        flags |= flag_table[j].flag;
                        }
                for (size_t j = 0; j < ELEMENTSOF(propagation_table) && !known; j++)
                        if (streq(o, propagation_table[j].name)) {
                                known = true;
                                propagation |= propagation_table[j].flag;
                        }
                if (known)
                        continue;
                size_t l = strlen(o);
                if (dlen + l + 2 > sizeof(data))
                        return -E2BIG;
                if (dlen > 0)
                        data[dlen++] = ',';
                memcpy(data + dlen, o, l + 1);
                dlen += l;
        }
        *ret_data = strdup(data);
        if (!*ret_data)
                return -ENOMEM;
        *ret_flags = flags;
        *ret_propagation = propagation;
        return 0;
}

int mount_apply(const MountSpec *m, const char *target) {
        _cleanup_free_ char *data = NULL;
        unsigned long flags, propagation;
        int r;

        if (isempty(m->type) && isempty(m->source))
                return -EINVAL;
        r = mount_parse_options(m->options, m->n_options, &flags, &propagation, &data);
        if (r < 0)
                return r;
        /* A read-only bind mount needs a remount: MS_RDONLY is ignored on the first call. */
        if (mount(m->source, target, m->type, flags, data) < 0)
                return negative_errno();
        if ((flags & MS_BIND) && (flags & MS_RDONLY) &&
            mount(NULL, target, NULL, flags | MS_REMOUNT, NULL) < 0) {
                r = negative_errno();
                (void)umount2(target, MNT_DETACH);
                return r;
        }
        if (propagation && mount(NULL, target, NULL, propagation, NULL) < 0) {
                r = negative_errno();
                (void)umount2(target, MNT_DETACH);
                return r;
        }
        return 0;
}

int mount_unmount_all(const char *path) {
        for (int i = 0; i < UNMOUNT_MAX_LAYERS; i++) {
                if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
                        if (errno == EINVAL || errno == ENOENT)
                                return 0;
                        return negative_errno();
                }
        }
        return -EBUSY;
}

int mount_detach_runc_leftovers(const char *runc_root, const char *id, const char *bundle,
                                const char *criu_work, const char *criu_images) {
        _cleanup_free_ char *state = NULL, *work = NULL;
        int r, total = 0;

        if ((runc_root && id && asprintf(&state, "%s/%s", runc_root, id) < 0) ||
            (!criu_work && bundle && asprintf(&work, "%s/work", bundle) < 0))
                return -ENOMEM;
        const char *dirs[] = {state, criu_work ? criu_work : work, criu_images};
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                if (!dirs[i])
                        continue;
                r = umount_below(dirs[i]);
                if (r < 0)
                        return r;
                total += r;
        }
        return total;
}
