/* SPDX-License-Identifier: Apache-2.0 */
#include "checkpoint-image.h"

#include <dirent.h>
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

int checkpoint_image_write(const Kybernate__V1__CheckpointInfo *info, const ArchiveSource *src,
                           const char *layout, char ret_digest[static OCI_DIGEST_MAX],
                           ArchiveProgressFunc progress, void *progress_userdata, uint64_t *ret_bytes) {
        /* A pod's members by name, as its image says them. */
        _cleanup_free_ char *members = NULL;
        if (src->member_names) {
                size_t len = 1;
                for (size_t i = 0; i < src->n_members; i++)
                        len += strlen(src->member_names[i]) + 1;
                members = calloc(1, len);
                if (!members)
                        return -ENOMEM;
                for (size_t i = 0; i < src->n_members; i++) {
                        if (i > 0)
                                strcat(members, ",");
                        strcat(members, src->member_names[i]);
                }
        }
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
                int r = archive_write_source(src, fd, progress, progress_userdata, ret_bytes);
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
                .container_name = members                         ? NULL
                                  : !isempty(info->k8s_container) ? info->k8s_container
                                                                  : info->container_id,
                .containerd_namespace = info->containerd_namespace,
                .image_ref = info->image_ref,
                .image_digest = info->image_digest,
                .checksum = info->checksum,
                .criu_version = criu_number(info->criu_version),
                .kernel_version = info->kernel_version,
                .architecture = arch,
                .kybernate_version = KYB_VERSION,
                .pod_members = members,
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

bool checkpoint_sample_incompressible(const uint8_t *buf, size_t n) {
        if (n < 4096)
                return false;
        uint64_t count[256] = {};
        for (size_t i = 0; i < n; i++)
                count[buf[i]]++;
        /* 256 * chi2 = sum (256 c - n)^2 / n; random bytes give chi2 near
         * 255, bytes spread over only 128 values give n. */
        uint64_t sum = 0;
        for (size_t v = 0; v < 256; v++) {
                int64_t d = (int64_t)(256 * count[v]) - (int64_t)n;
                sum += (uint64_t)(d * d) / n;
        }
        return sum / 256 < n / 16;
}

#define SAMPLE_CHUNK (16u * 1024)
#define SAMPLE_CHUNKS 64u
#define SAMPLE_FILES 64u

OciCompression checkpoint_image_compression(const ArchiveSource *src) {
        const char *dir = src->n_members > 0 ? src->member_dirs[0] : src->path;
        _cleanup_free_ char *images = strdup_printf("%s/checkpoint", dir);
        _cleanup_close_ int dfd =
                images ? open(images, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -EBADF;
        DIR *d = dfd >= 0 ? fdopendir(fcntl(dfd, F_DUPFD_CLOEXEC, 3)) : NULL;
        if (!d)
                return OCI_COMPRESSION_ZSTD;
        int fds[SAMPLE_FILES];
        uint64_t sizes[SAMPLE_FILES], total = 0;
        size_t n = 0;
        struct dirent *de;
        while (n < SAMPLE_FILES && (de = readdir(d))) {
                if (!startswith(de->d_name, "pages-") || !endswith(de->d_name, ".img"))
                        continue;
                int fd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                struct stat st;
                if (fd < 0)
                        continue;
                if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)SAMPLE_CHUNK) {
                        safe_close(fd);
                        continue;
                }
                fds[n] = fd;
                sizes[n++] = (uint64_t)st.st_size;
                total += (uint64_t)st.st_size;
        }
        closedir(d);
        _cleanup_free_ uint8_t *buf = n > 0 ? malloc(SAMPLE_CHUNK * SAMPLE_CHUNKS) : NULL;
        size_t got = 0;
        /* Chunks at even steps through the pages, as if the files were one. */
        for (unsigned i = 0; buf && i < SAMPLE_CHUNKS; i++) {
                uint64_t at = total / SAMPLE_CHUNKS * i;
                size_t f = 0;
                while (f < n - 1 && at >= sizes[f]) {
                        at -= sizes[f];
                        f++;
                }
                if (at > sizes[f] - SAMPLE_CHUNK)
                        at = sizes[f] - SAMPLE_CHUNK;
                ssize_t k = pread(fds[f], buf + got, SAMPLE_CHUNK, (off_t)at);
                if (k > 0)
                        got += (size_t)k;
        }
        for (size_t i = 0; i < n; i++)
                safe_close(fds[i]);
        return buf && checkpoint_sample_incompressible(buf, got) ? OCI_COMPRESSION_NONE
                                                                 : OCI_COMPRESSION_ZSTD;
}
