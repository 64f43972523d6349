/* SPDX-License-Identifier: Apache-2.0 */
/* What "start" announces (shim/bootstrap.c): the Go build information of the
 * binary that runs the shim, read from synthetic ELF files, and the output for
 * containerd 1.x and 2.x. */
#include <elf.h>
#include <fcntl.h>

#include "shim/bootstrap.h"
#include "test.h"

static const char SENTINEL_START[16] = "0w\xaf\x0c\x92t\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6";
static const char SENTINEL_END[16] = "\xf9\x32\x43\x31\x86\x18\x20\x72\x00\x82\x42\x10\x41\x16\xd8\xf2";

/* buildinfo: a .go.buildinfo section as Go >= 1.18 writes it (FLAGS 0x2), the
 * module information framed by the sentinels; returns its size. */
static size_t buildinfo(uint8_t *buf, uint8_t flags, const char *go, const char *mod) {
        size_t n = 0, gl = strlen(go), ml = strlen(mod);
        memset(buf, 0, 32);
        memcpy(buf, "\xff Go buildinf:", 14);
        buf[14] = 8;
        buf[15] = flags;
        n = 32;
        buf[n++] = (uint8_t)gl;
        memcpy(buf + n, go, gl);
        n += gl;
        /* a two-byte varint: the module text is longer than 127 bytes */
        size_t total = ml + 32;
        buf[n++] = (uint8_t)(0x80 | (total & 0x7f));
        buf[n++] = (uint8_t)(total >> 7);
        memcpy(buf + n, SENTINEL_START, 16);
        memcpy(buf + n + 16, mod, ml);
        memcpy(buf + n + 16 + ml, SENTINEL_END, 16);
        return n + total;
}

/* write_elf: an ELF64 file with the sections SECNAME (holding DATA) and
 * .shstrtab; returns an fd open on it. */
static int write_elf(const char *secname, const void *data, size_t size) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/bin", test_tmpdir());
        char strtab[256];
        size_t sl = 0;
        strtab[sl++] = 0;
        size_t name_sec = sl;
        sl += (size_t)snprintf(strtab + sl, sizeof(strtab) - sl, "%s", secname) + 1;
        size_t name_str = sl;
        sl += (size_t)snprintf(strtab + sl, sizeof(strtab) - sl, ".shstrtab") + 1;

        Elf64_Ehdr eh = {};
        memcpy(eh.e_ident, ELFMAG, SELFMAG);
        eh.e_ident[EI_CLASS] = ELFCLASS64;
        eh.e_ident[EI_DATA] = ELFDATA2LSB;
        eh.e_ident[EI_VERSION] = EV_CURRENT;
        eh.e_type = ET_EXEC;
        eh.e_machine = EM_X86_64;
        eh.e_version = EV_CURRENT;
        eh.e_ehsize = sizeof(Elf64_Ehdr);
        eh.e_shentsize = sizeof(Elf64_Shdr);
        eh.e_shnum = 3;
        eh.e_shstrndx = 2;
        uint64_t off_data = sizeof(eh), off_str = off_data + size, off_sh = (off_str + sl + 7) & ~7ull;
        eh.e_shoff = off_sh;
        Elf64_Shdr sh[3] = {};
        sh[1].sh_name = (uint32_t)name_sec;
        sh[1].sh_type = SHT_PROGBITS;
        sh[1].sh_offset = off_data;
        sh[1].sh_size = size;
        sh[2].sh_name = (uint32_t)name_str;
        sh[2].sh_type = SHT_STRTAB;
        sh[2].sh_offset = off_str;
        sh[2].sh_size = sl;

        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(pwrite(fd, &eh, sizeof(eh), 0) == (ssize_t)sizeof(eh));
        ASSERT_TRUE(pwrite(fd, data, size, (off_t)off_data) == (ssize_t)size);
        ASSERT_TRUE(pwrite(fd, strtab, sl, (off_t)off_str) == (ssize_t)sl);
        ASSERT_TRUE(pwrite(fd, sh, sizeof(sh), (off_t)off_sh) == (ssize_t)sizeof(sh));
        return fd;
}

#define MOD_21                                                                                     \
        "path\tgithub.com/containerd/containerd/v2/cmd/containerd\nbuild\t-buildmode=exe\nbuild\t" \
        "-compiler=gc\nbuild\t-trimpath=true\nbuild\tCGO_ENABLED=1\nbuild\tGOARCH=amd64\n"
#define MOD_16                                                                                           \
        "path\tgithub.com/containerd/containerd/cmd/containerd\nmod\tgithub.com/containerd/containerd\t" \
        "(devel)\t\nbuild\t-compiler=gc\nbuild\t-trimpath=true\nbuild\tCGO_ENABLED=1\n"

TEST(buildinfo_main_path) {
        uint8_t bi[1024];
        size_t n = buildinfo(bi, 0x2, "go1.27.1", MOD_21);
        _cleanup_close_ int fd = write_elf(".go.buildinfo", bi, n);
        _cleanup_free_ char *path = NULL;
        ASSERT_OK(go_binary_main_path(fd, &path));
        ASSERT_STREQ(path, "github.com/containerd/containerd/v2/cmd/containerd");
        ASSERT_EQ(containerd_major_of_main_path(path), 2u);

        n = buildinfo(bi, 0x2, "go1.19.8", MOD_16);
        _cleanup_close_ int fd16 = write_elf(".go.buildinfo", bi, n);
        _cleanup_free_ char *path16 = NULL;
        ASSERT_OK(go_binary_main_path(fd16, &path16));
        ASSERT_STREQ(path16, "github.com/containerd/containerd/cmd/containerd");
        ASSERT_EQ(containerd_major_of_main_path(path16), 1u);
}

TEST(buildinfo_refusals) {
        uint8_t bi[1024];
        _cleanup_free_ char *path = NULL;

        /* not ELF at all */
        _cleanup_close_ int txt = write_elf(".go.buildinfo", "x", 1);
        ASSERT_TRUE(pwrite(txt, "#!/bin/sh", 9, 0) == 9);
        ASSERT_ERROR(go_binary_main_path(txt, &path), ENOEXEC);
        /* an ELF file that is not a Go program */
        size_t n = buildinfo(bi, 0x2, "go1.27.1", MOD_21);
        _cleanup_close_ int c = write_elf(".data", bi, n);
        ASSERT_ERROR(go_binary_main_path(c, &path), ENOENT);
        /* Go before 1.18: pointers instead of inline strings */
        n = buildinfo(bi, 0x0, "go1.17", MOD_21);
        _cleanup_close_ int old = write_elf(".go.buildinfo", bi, n);
        ASSERT_ERROR(go_binary_main_path(old, &path), EPROTONOSUPPORT);
        /* wrong magic */
        n = buildinfo(bi, 0x2, "go1.27.1", MOD_21);
        bi[3] = 'X';
        _cleanup_close_ int magic = write_elf(".go.buildinfo", bi, n);
        ASSERT_ERROR(go_binary_main_path(magic, &path), EBADMSG);
        /* a length running past the section */
        ASSERT_TRUE(buildinfo(bi, 0x2, "go1.27.1", MOD_21) > 60);
        _cleanup_close_ int cut = write_elf(".go.buildinfo", bi, 60);
        ASSERT_ERROR(go_binary_main_path(cut, &path), EBADMSG);
        /* a varint that never ends */
        memset(bi + 32, 0xff, 16);
        _cleanup_close_ int v = write_elf(".go.buildinfo", bi, 48);
        ASSERT_ERROR(go_binary_main_path(v, &path), EBADMSG);
        /* module information without a path line */
        n = buildinfo(bi, 0x2, "go1.27.1", "build\t-compiler=gc\n");
        _cleanup_close_ int nopath = write_elf(".go.buildinfo", bi, n);
        ASSERT_ERROR(go_binary_main_path(nopath, &path), ENOENT);
        ASSERT_TRUE(path == NULL);
}

TEST(containerd_major) {
        ASSERT_EQ(containerd_major_of_main_path("github.com/containerd/containerd/cmd/containerd"), 1u);
        ASSERT_EQ(containerd_major_of_main_path("github.com/containerd/containerd/v2/cmd/containerd"), 2u);
        ASSERT_EQ(containerd_major_of_main_path("github.com/containerd/containerd/v3/cmd/containerd"), 3u);
        ASSERT_EQ(containerd_major_of_main_path("github.com/containerd/containerd/v10"), 10u);
        /* programs embedding containerd, or other programs: unknown */
        ASSERT_EQ(containerd_major_of_main_path("github.com/k3s-io/k3s/cmd/server"), 0u);
        ASSERT_EQ(containerd_major_of_main_path("github.com/containerd/containerd/cmd/ctr"), 0u);
        ASSERT_EQ(containerd_major_of_main_path("github.com/containerd/containerd/v2x/cmd"), 0u);
        ASSERT_EQ(containerd_major_of_main_path("github.com/containerd/containerd/v1/cmd"), 0u);
        ASSERT_EQ(containerd_major_of_main_path(""), 0u);
}

TEST(task_api_version_of_files) {
        uint8_t bi[1024];
        char p21[4096], p16[4096];
        size_t n = buildinfo(bi, 0x2, "go1.27.1", MOD_21);
        _cleanup_close_ int fd21 = write_elf(".go.buildinfo", bi, n);
        snprintf(p21, sizeof(p21), "/proc/self/fd/%d", fd21);
        n = buildinfo(bi, 0x2, "go1.19.8", MOD_16);
        _cleanup_close_ int fd16 = write_elf(".go.buildinfo", bi, n);
        snprintf(p16, sizeof(p16), "/proc/self/fd/%d", fd16);

        /* our parent (the test runner) is no containerd: the -publish-binary decides */
        ASSERT_EQ(shim_task_api_version(getppid(), p21), 3u);
        ASSERT_EQ(shim_task_api_version(getppid(), p16), 2u);
        ASSERT_EQ(shim_task_api_version(getppid(), NULL), 2u);
        ASSERT_EQ(shim_task_api_version(getppid(), "/nonexistent"), 2u);
}

TEST(bootstrap_output_formats) {
        const char *uri =
                "unix:///run/containerd/s/0ef8ff6eee5e57db347888bf5cbc6792a6072d2620834fa5d518ce50f84567bf";
        _cleanup_free_ char *v2 = NULL, *v3 = NULL, *bad = NULL;
        ASSERT_OK(bootstrap_output(uri, 2, &v2));
        ASSERT_STREQ(v2, uri);
        ASSERT_OK(bootstrap_output(uri, 3, &v3));
        ASSERT_STREQ(v3, "{\"version\":3,\"address\":\"unix:///run/containerd/s/"
                         "0ef8ff6eee5e57db347888bf5cbc6792a6072d2620834fa5d518ce50f84567bf\","
                         "\"protocol\":\"ttrpc\"}");
        ASSERT_ERROR(bootstrap_output("unix:///x\"y", 3, &bad), EINVAL);
}
