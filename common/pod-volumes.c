/* SPDX-License-Identifier: Apache-2.0 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "archive.h"
#include "pod-volumes.h"
#include "util.h"

#define EMPTY_DIR_MARK "/volumes/kubernetes.io~empty-dir/"
#define VOLUME_NAME_MAX 63
#define POD_VOLUMES_MAX 64

const char *pod_volume_name(const char *source) {
        const char *m = source ? strstr(source, EMPTY_DIR_MARK) : NULL;
        if (!m || source[0] != '/')
                return NULL;
        const char *name = m + strlen(EMPTY_DIR_MARK);
        size_t l = strlen(name);
        if (l == 0 || l > VOLUME_NAME_MAX || name[0] == '.' ||
            strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != l)
                return NULL;
        return name;
}

typedef int (*VolumeFn)(const char *source, const char *name, const char *dir, void *userdata);

/* Calls fn for each emptyDir bind mount of the spec (at most POD_VOLUMES_MAX). */
static int for_each_volume(const char *spec_json, VolumeFn fn, const char *dir, void *userdata) {
        cJSON *spec = cJSON_Parse(spec_json);
        const cJSON *mounts = cJSON_GetObjectItemCaseSensitive(spec, "mounts"), *m;
        int r = cJSON_IsObject(spec) ? 0 : -EBADMSG, n = 0;
        cJSON_ArrayForEach(m, mounts) {
                const cJSON *src = cJSON_GetObjectItemCaseSensitive(m, "source");
                const char *name = cJSON_IsString(src) ? pod_volume_name(src->valuestring) : NULL;
                if (r < 0 || !name)
                        continue;
                r = ++n > POD_VOLUMES_MAX ? -E2BIG : fn(src->valuestring, name, dir, userdata);
        }
        cJSON_Delete(spec);
        return r;
}

static int capture_one(const char *source, const char *name, const char *dest_dir, void *userdata) {
        _cleanup_free_ char *tar = NULL, *tmp = NULL;
        _cleanup_close_ int src = open(source, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (src < 0)
                return negative_errno();
        if (asprintf(&tar, "%s/" POD_VOLUME_DIR "/%s.tar", dest_dir, name) < 0 ||
            asprintf(&tmp, "%s.tmp", tar) < 0)
                return -ENOMEM;
        _cleanup_close_ int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (out < 0)
                return negative_errno();
        _cleanup_(archive_writer_freep) ArchiveWriter *w = NULL;
        int r = archive_writer_new(out, &w);
        if (r >= 0)
                r = archive_writer_add_tree(w, src, NULL);
        if (r >= 0)
                r = archive_writer_finish(w);
        return tmp_file_commit(tmp, tar, r);
}

int pod_volumes_capture(const char *spec_json, const char *dest_dir) {
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, "%s/" POD_VOLUME_DIR, dest_dir) < 0)
                return -ENOMEM;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        int r = for_each_volume(spec_json, capture_one, dest_dir, NULL);
        (void)rmdir(dir); /* only if no volume was saved */
        return r;
}

static bool dir_empty(int fd) {
        int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
        if (!d) {
                if (dup_fd >= 0)
                        close(dup_fd);
                return false;
        }
        bool empty = readdir_no_dot(d) == NULL;
        closedir(d);
        return empty;
}

static int restore_one(const char *source, const char *name, const char *checkpoint_dir, void *userdata) {
        _cleanup_free_ char *tar = NULL;
        if (asprintf(&tar, "%s/" POD_VOLUME_DIR "/%s.tar", checkpoint_dir, name) < 0)
                return -ENOMEM;
        _cleanup_close_ int in = open(tar, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (in < 0)
                return errno == ENOENT ? 0 : negative_errno(); /* not saved: left as it is */
        _cleanup_close_ int dest = open(source, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dest < 0)
                return negative_errno();
        if (!dir_empty(dest))
                return 0; /* filled by a member restored before */
        const ArchiveLimits limits = {};
        return archive_extract(in, dest, &limits, false);
}

int pod_volumes_restore(const char *checkpoint_dir, const char *spec_json) {
        return for_each_volume(spec_json, restore_one, checkpoint_dir, NULL);
}
