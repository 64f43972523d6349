/* SPDX-License-Identifier: Apache-2.0 */
#include "checkpoint-image.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "util.h"

/* "Version: 4.0" (criu --version) as CRIU's number, 40000. */
static uint32_t criu_number(const char *s) {
        unsigned v[3] = {};
        while (s && *s && (*s < '0' || *s > '9'))
                s++;
        if (!s || sscanf(s, "%u.%u.%u", &v[0], &v[1], &v[2]) < 2 || v[1] > 99 || v[2] > 99)
                return 0;
        return v[0] * 10000 + v[1] * 100 + v[2];
}

/* The architecture as OCI names it (Go's GOARCH). */
static const char *oci_architecture(void) {
        static struct utsname u;
        if (uname(&u) < 0)
                return NULL;
        if (streq(u.machine, "x86_64"))
                return "amd64";
        if (streq(u.machine, "aarch64"))
                return "arm64";
        return u.machine;
}

int checkpoint_image_write(const Kybernate__V1__CheckpointInfo *info, const char *layout,
                           char ret_digest[static OCI_DIGEST_MAX], ArchiveProgressFunc progress,
                           void *progress_userdata, uint64_t *ret_bytes) {
        if (mkdir(layout, 0700) < 0)
                return negative_errno();
        _cleanup_close_ int dfd = open(layout, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return negative_errno();
        {
                _cleanup_close_ int fd =
                        openat(dfd, "layer.tar", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0)
                        return negative_errno();
                int r = archive_write_checkpoint_progress(info->path, fd, progress, progress_userdata,
                                                          ret_bytes);
                if (r < 0)
                        return r;
        }
        char created[64];
        format_time_rfc3339(created, sizeof(created), info->created_ns);
        const char *arch = oci_architecture();
        OciCheckpointInfo ci = {
                .checkpoint_id = info->id,
                .created = created,
                .k8s_namespace = info->k8s_namespace,
                .pod_name = info->k8s_pod,
                .container_name = !isempty(info->k8s_container) ? info->k8s_container : info->container_id,
                .containerd_namespace = info->containerd_namespace,
                .image_ref = info->image_ref,
                .image_digest = info->image_digest,
                .checksum = info->checksum,
                .criu_version = criu_number(info->criu_version),
                .kernel_version = info->kernel_version,
                .architecture = arch,
                .kybernate_version = KYB_VERSION,
        };
        OciAnnotation *ann = NULL;
        size_t n_ann = 0;
        int r = oci_checkpoint_annotations(&ci, &ann, &n_ann);
        if (r < 0)
                return r;
        OciImageWrite w = {
                .layer_path = "layer.tar",
                .annotations = ann,
                .n_annotations = n_ann,
                .created = created,
                .architecture = arch,
                .os = "linux",
        };
        r = oci_image_write(dfd, &w, ret_digest);
        oci_annotations_free(ann, n_ann);
        return r;
}
