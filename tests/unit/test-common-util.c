/* SPDX-License-Identifier: Apache-2.0 */
/* common/util.c helpers without a test file of their own. */
#include "test.h"
#include "util.h"

TEST(sockaddr_un_set_bounds) {
        struct sockaddr_un sa;
        char path[sizeof(sa.sun_path) + 1];

        /* The longest path that fits leaves room for the NUL. */
        memset(path, 'a', sizeof(path));
        path[0] = '/';
        path[sizeof(sa.sun_path) - 1] = 0;
        memset(&sa, 0x55, sizeof(sa));
        ASSERT_OK(sockaddr_un_set(&sa, path));
        ASSERT_EQ(sa.sun_family, AF_UNIX);
        ASSERT_STREQ(sa.sun_path, path);

        /* One more byte (sun_path full, no NUL) and longer are refused, untouched. */
        path[sizeof(sa.sun_path) - 1] = 'a';
        path[sizeof(sa.sun_path)] = 0;
        memset(&sa, 0x55, sizeof(sa));
        ASSERT_ERROR(sockaddr_un_set(&sa, path), ENAMETOOLONG);
        ASSERT_EQ(((unsigned char *)&sa)[0], 0x55);

        ASSERT_OK(sockaddr_un_set(&sa, "/run/kybernate.sock"));
        ASSERT_STREQ(sa.sun_path, "/run/kybernate.sock");
}
