/* SPDX-License-Identifier: Apache-2.0 */
/* Image references: the rule that tells them from catalog references, the
 * grammar, and what is refused. */
#include "image-ref.h"
#include "test.h"

#define DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

TEST(rule) {
        ASSERT_TRUE(image_ref_is_registry("registry.local/web:v1"));
        ASSERT_TRUE(image_ref_is_registry("127.0.0.1:5000/ckpt/web"));
        ASSERT_TRUE(image_ref_is_registry("localhost/ckpt"));
        ASSERT_TRUE(image_ref_is_registry("reg:5000/x"));
        /* Catalog references: namespace/pod/container (a DNS label first), ids, names. */
        ASSERT_FALSE(image_ref_is_registry("team-a/web-0/app"));
        ASSERT_FALSE(image_ref_is_registry("default/web.v2-0/app"));
        ASSERT_FALSE(image_ref_is_registry("0123456789abcdef0123456789abcdef"));
        ASSERT_FALSE(image_ref_is_registry("my.checkpoint"));
        ASSERT_FALSE(image_ref_is_registry("localhostx/a/b"));
        ASSERT_FALSE(image_ref_is_registry("/var/lib/x"));
        ASSERT_FALSE(image_ref_is_registry(NULL));
}

TEST(parse) {
        ImageRef r;
        const char *why = NULL;
        ASSERT_EQ(image_ref_parse("127.0.0.1:5000/ckpt/web-app:v1.2_x", &r, &why), 0);
        ASSERT_STREQ(r.registry, "127.0.0.1:5000");
        ASSERT_STREQ(r.repository, "ckpt/web-app");
        ASSERT_STREQ(r.tag, "v1.2_x");
        ASSERT_NULL(r.digest);
        image_ref_done(&r);

        ASSERT_EQ(image_ref_parse("registry.example.com/a/b__c/d--e@" DIGEST, &r, &why), 0);
        ASSERT_STREQ(r.registry, "registry.example.com");
        ASSERT_STREQ(r.repository, "a/b__c/d--e");
        ASSERT_NULL(r.tag);
        ASSERT_STREQ(r.digest, DIGEST);
        char *p = image_ref_pinned(&r, DIGEST);
        ASSERT_STREQ(p, "registry.example.com/a/b__c/d--e@" DIGEST);
        free(p);
        image_ref_done(&r);

        ASSERT_EQ(image_ref_parse("localhost:5000/x:latest@" DIGEST, &r, &why), 0);
        ASSERT_STREQ(r.tag, "latest");
        ASSERT_STREQ(r.digest, DIGEST);
        image_ref_done(&r);
}

TEST(refused) {
        static const char *const bad[] = {
                "team-a/web-0/app",         /* a catalog reference */
                "reg.local/",               /* no repository */
                "reg.local/Web",            /* upper case */
                "reg.local/a//b",           /* empty component */
                "reg.local/a-/b",           /* separator last */
                "reg.local/.a",             /* separator first */
                "reg.local/a___b",          /* three underscores */
                "reg.local/a..b",           /* two dots */
                "reg.local/a:",             /* empty tag */
                "reg.local/a:.x",           /* tag starts with '.' */
                "reg.local/a:x/y",          /* a '/' in the tag */
                "reg.local/a:t@sha256:123", /* short digest */
                "reg.local/a@sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "reg.local/a@SHA256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "reg.local/a@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
                "reg.local:0/a",     /* port 0 */
                "reg.local:65536/a", /* port too big */
                "reg.local:50a/a",   /* port not a number */
                "reg.local:/a",      /* empty port */
                "-reg.local/a",      /* label starts with '-' */
                "reg..local/a",      /* empty label */
                "reg.local./a",      /* empty last label */
                "reg.lo_cal/a",      /* '_' in the host */
                "reg.local/a b",     /* space */
                "reg.local/a\n",     /* control character */
                "reg.local/../etc",  /* path escape */
                "reg.local/a:t:u",   /* two tags */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ImageRef r;
                const char *why = NULL;
                int k = image_ref_parse(bad[i], &r, &why);
                if (k != -EINVAL)
                        fprintf(stderr, "accepted: %s\n", bad[i]);
                ASSERT_EQ(k, -EINVAL);
                ASSERT_NOT_NULL(why);
                ASSERT_NULL(r.registry);
        }
        char long_name[300] = "reg.local/";
        memset(long_name + 10, 'a', 250);
        ImageRef r;
        const char *why = NULL;
        ASSERT_EQ(image_ref_parse(long_name, &r, &why), -EINVAL);
        long_name[245] = 0;
        ASSERT_EQ(image_ref_parse(long_name, &r, &why), 0);
        image_ref_done(&r);
}

TEST(digest) {
        ASSERT_TRUE(image_digest_valid(DIGEST));
        ASSERT_FALSE(image_digest_valid("sha256:"));
        ASSERT_FALSE(image_digest_valid(DIGEST "0"));
        ASSERT_FALSE(image_digest_valid("sha256:../../../../etc/passwd"));
        ASSERT_FALSE(image_digest_valid(NULL));
}
