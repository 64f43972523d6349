/* SPDX-License-Identifier: Apache-2.0 */
/* Which task API to announce from "start" (bootstrap.h). containerd passes
 * nothing that tells 1.7 from 2.x (both set MAX_SHIM_VERSION=2 and the same
 * arguments), so the shim reads the Go build information of the binary that
 * runs it: a fixed-layout section, found by the ELF section headers. */
#include <elf.h>
#include <fcntl.h>

#include "bootstrap.h"
#include "util.h"

/* Bounds on what is read: containerd has ~40 sections and a buildinfo of
 * under a kilobyte. */
#define ELF_SECTIONS_MAX 4096u
#define ELF_SHSTRTAB_MAX ((uint64_t)256 * 1024)
#define BUILDINFO_MAX ((size_t)64 * 1024)
#define BUILDINFO_HEADER 32u

static const char BUILDINFO_MAGIC[14] = "\xff Go buildinf:";

static int read_exact_at(int fd, void *buf, size_t size, uint64_t off) {
        if (off > (uint64_t)INT64_MAX - size)
                return -EBADMSG;
        ssize_t k = read_full_at(fd, buf, size, (off_t)off);
        if (k < 0)
                return (int)k;
        return (size_t)k == size ? 0 : -EBADMSG;
}

/* Reads the contents of the section named NAME (at most MAX bytes of it). */
static int elf_read_section(int fd, const char *name, size_t max, uint8_t **ret, size_t *ret_size) {
        Elf64_Ehdr eh;
        int r = read_exact_at(fd, &eh, sizeof(eh), 0);
        if (r < 0)
                return r == -EBADMSG ? -ENOEXEC : r;
        if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
            eh.e_ident[EI_DATA] != ELFDATA2LSB)
                return -ENOEXEC;
        if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shnum > ELF_SECTIONS_MAX ||
            eh.e_shstrndx >= eh.e_shnum)
                return -ENOENT; /* no usable section headers (SHN_XINDEX included) */

        _cleanup_free_ Elf64_Shdr *sh = calloc(eh.e_shnum, sizeof(Elf64_Shdr));
        if (!sh)
                return -ENOMEM;
        r = read_exact_at(fd, sh, (size_t)eh.e_shnum * sizeof(Elf64_Shdr), eh.e_shoff);
        if (r < 0)
                return r;
        const Elf64_Shdr *strs = &sh[eh.e_shstrndx];
        if (strs->sh_type != SHT_STRTAB || strs->sh_size == 0 || strs->sh_size > ELF_SHSTRTAB_MAX)
                return -EBADMSG;
        _cleanup_free_ char *names = malloc(strs->sh_size + 1);
        if (!names)
                return -ENOMEM;
        r = read_exact_at(fd, names, strs->sh_size, strs->sh_offset);
        if (r < 0)
                return r;
        names[strs->sh_size] = 0;

        for (size_t i = 0; i < eh.e_shnum; i++) {
                if (sh[i].sh_name >= strs->sh_size || !streq(names + sh[i].sh_name, name))
                        continue;
                if (sh[i].sh_type == SHT_NOBITS)
                        return -EBADMSG;
                size_t n = (size_t)MIN(sh[i].sh_size, (uint64_t)max);
                _cleanup_free_ uint8_t *data = malloc(n + 1);
                if (!data)
                        return -ENOMEM;
                r = read_exact_at(fd, data, n, sh[i].sh_offset);
                if (r < 0)
                        return r;
                *ret_size = n;
                *ret = TAKE_PTR(data);
                return 0;
        }
        return -ENOENT;
}

/* Go's unsigned varint: 7 bits a byte, least significant first. */
static int uvarint(const uint8_t **p, const uint8_t *end, uint64_t *ret) {
        uint64_t v = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
                if (*p >= end)
                        return -EBADMSG;
                uint8_t b = *(*p)++;
                v |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *ret = v;
                        return 0;
                }
        }
        return -EBADMSG;
}

static int inline_string(const uint8_t **p, const uint8_t *end, const uint8_t **ret, size_t *ret_len) {
        uint64_t n;
        int r = uvarint(p, end, &n);
        if (r < 0)
                return r;
        if (n > (uint64_t)(end - *p))
                return -EBADMSG;
        *ret = *p;
        *ret_len = (size_t)n;
        *p += n;
        return 0;
}

int go_binary_main_path(int fd, char **ret) {
        _cleanup_free_ uint8_t *bi = NULL;
        size_t size = 0;
        int r = elf_read_section(fd, ".go.buildinfo", BUILDINFO_MAX, &bi, &size);
        if (r < 0)
                return r;
        if (size < BUILDINFO_HEADER || memcmp(bi, BUILDINFO_MAGIC, sizeof(BUILDINFO_MAGIC)) != 0)
                return -EBADMSG;
        /* Byte 15 holds the flags; bit 1: the version and module strings follow
         * the header inline (Go >= 1.18), instead of pointers into the data. */
        if (!(bi[15] & 0x2))
                return -EPROTONOSUPPORT;
        const uint8_t *p = bi + BUILDINFO_HEADER, *end = bi + size, *s;
        size_t len;
        r = inline_string(&p, end, &s, &len); /* the Go version */
        if (r < 0)
                return r;
        r = inline_string(&p, end, &s, &len); /* the module information */
        if (r < 0)
                return r;
        /* It is framed by 16-byte sentinels; the lines are "key\tvalue\n". */
        if (len >= 33 && s[len - 17] == '\n') {
                s += 16;
                len -= 32;
        }
        const uint8_t *line = s, *stop = s + len;
        while (line < stop) {
                const uint8_t *nl = memchr(line, '\n', (size_t)(stop - line));
                const uint8_t *eol = nl ? nl : stop;
                if ((size_t)(eol - line) > 5 && memcmp(line, "path\t", 5) == 0) {
                        char *v = strndup((const char *)line + 5, (size_t)(eol - line) - 5);
                        if (!v)
                                return -ENOMEM;
                        *ret = v;
                        return 0;
                }
                line = eol + 1;
        }
        return -ENOENT;
}

unsigned containerd_major_of_main_path(const char *path) {
        const char *rest = startswith(path, "github.com/containerd/containerd/");
        if (!rest)
                return 0;
        /* Go's semantic import versioning: major 2 and later carry "/vN". */
        if (rest[0] == 'v' && rest[1] >= '1' && rest[1] <= '9') {
                char *e = NULL;
                unsigned long v = strtoul(rest + 1, &e, 10);
                if ((*e == '/' || *e == 0) && v >= 2 && v < 1000)
                        return (unsigned)v;
        }
        return streq(rest, "cmd/containerd") ? 1 : 0;
}

static unsigned containerd_major_of_file(const char *file) {
        _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *path = NULL;
        if (fd < 0 || go_binary_main_path(fd, &path) < 0)
                return 0;
        return containerd_major_of_main_path(path);
}

unsigned shim_task_api_version(pid_t parent, const char *publish_binary) {
        char exe[64];
        snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)parent);
        /* The running binary first (the one on disk may be newer already). */
        unsigned major = containerd_major_of_file(exe);
        if (major == 0 && !isempty(publish_binary))
                major = containerd_major_of_file(publish_binary);
        return major >= 2 ? 3 : 2;
}

int bootstrap_output(const char *uri, unsigned version, char **ret) {
        char *s;
        /* The address goes into JSON unquoted: refuse what would need escaping. */
        for (const char *c = uri; *c; c++)
                if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
                        return -EINVAL;
        if (version < 3)
                s = strdup(uri);
        else if (asprintf(&s, "{\"version\":%u,\"address\":\"%s\",\"protocol\":\"ttrpc\"}", version, uri) <
                 0)
                s = NULL;
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}
