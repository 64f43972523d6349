/* SPDX-License-Identifier: Apache-2.0 */
#include "options.h"
#include "containerd/runc/options/oci.pb-c.h"
#include "util.h"

#define OPTION_STRING_MAX 4096

void shim_options_done(ShimOptions *o) {
        free(o->binary_name);
        free(o->root);
        free(o->criu_path);
        free(o->criu_image_path);
        free(o->criu_work_path);
        free(o->shim_cgroup);
        *o = (ShimOptions){};
}

/* Empty strings count as unset. Paths must be absolute, names bounded. */
static int take_string(char **dst, const char *src, bool path) {
        if (isempty(src))
                return 0;
        if (strlen(src) > OPTION_STRING_MAX || (path && src[0] != '/'))
                return -EINVAL;
        *dst = strdup(src);
        return *dst ? 0 : -ENOMEM;
}

int shim_options_from_any(const Google__Protobuf__Any *any, ShimOptions *ret) {
        ShimOptions o = {};
        int r = 0;

        *ret = o;
        /* An empty Any (a restore's Create sends one) means no options, as does any other type. */
        if (!any || isempty(any->type_url) || !streq(any->type_url, RUNC_OPTIONS_TYPE))
                return 0;
        Containerd__Runc__V1__Options *m =
                containerd__runc__v1__options__unpack(NULL, any->value.len, any->value.data);
        if (!m)
                return -EBADMSG;
        o.no_pivot_root = m->no_pivot_root;
        o.no_new_keyring = m->no_new_keyring;
        o.systemd_cgroup = m->systemd_cgroup;
        o.io_uid = m->io_uid;
        o.io_gid = m->io_gid;
        if ((r = take_string(&o.binary_name, m->binary_name, false)) < 0 ||
            (r = take_string(&o.root, m->root, true)) < 0 ||
            (r = take_string(&o.criu_path, m->criu_path, true)) < 0 ||
            (r = take_string(&o.criu_image_path, m->criu_image_path, true)) < 0 ||
            (r = take_string(&o.criu_work_path, m->criu_work_path, true)) < 0 ||
            (r = take_string(&o.shim_cgroup, m->shim_cgroup, false)) < 0) {
                shim_options_done(&o);
                containerd__runc__v1__options__free_unpacked(m, NULL);
                return r;
        }
        containerd__runc__v1__options__free_unpacked(m, NULL);
        *ret = o;
        return 0;
}

int shim_options_from_bytes(const uint8_t *data, size_t len, ShimOptions *ret) {
        *ret = (ShimOptions){};
        if (len == 0)
                return 0;
        Google__Protobuf__Any *any = google__protobuf__any__unpack(NULL, len, data);
        if (!any)
                return 0; /* containerd >= 2.3 sends BootstrapParams here: options come again with Create */
        int r = shim_options_from_any(any, ret);
        google__protobuf__any__free_unpacked(any, NULL);
        return r;
}

int shim_options_runc_config(const ShimOptions *o, const char *ns, const char *bundle, RuncConfig *ret) {
        RuncConfig c = {.systemd_cgroup = o->systemd_cgroup};

        if (asprintf(&c.root, "%s/%s", o->root ? o->root : RUNC_DEFAULT_ROOT, ns) < 0)
                c.root = NULL;
        if (asprintf(&c.log_path, "%s/log.json", bundle) < 0)
                c.log_path = NULL;
        c.binary = strdup(o->binary_name ? o->binary_name : "runc");
        if (o->criu_path)
                c.criu = strdup(o->criu_path);
        if (!c.root || !c.log_path || !c.binary || (o->criu_path && !c.criu)) {
                runc_config_done(&c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

int shim_options_save(const Google__Protobuf__Any *any, const char *bundle) {
        if (!any || isempty(any->type_url) || !streq(any->type_url, RUNC_OPTIONS_TYPE))
                return 0;
        size_t len = google__protobuf__any__get_packed_size(any);
        _cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
        _cleanup_free_ char *path = strdup_printf("%s/" SHIM_OPTIONS_FILE, bundle);
        if (!buf || !path)
                return -ENOMEM;
        google__protobuf__any__pack(any, buf);
        /* The bundle goes with the container: nothing to sync. */
        return write_file_replace(path, buf, len, 0600, false);
}

int shim_options_load(const char *bundle, ShimOptions *ret) {
        *ret = (ShimOptions){};
        _cleanup_free_ char *path = strdup_printf("%s/" SHIM_OPTIONS_FILE, bundle), *buf = NULL;
        size_t len = 0;
        if (!path)
                return -ENOMEM;
        int r = read_full_file(path, 64 * 1024, &buf, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return shim_options_from_bytes((const uint8_t *)buf, len, ret);
}
