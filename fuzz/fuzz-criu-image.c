/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the CRIU image reader: the first byte picks the image
 * type, the rest is the file. */
#include <stddef.h>
#include <stdint.h>

#include "criu-image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        uint8_t which = data[0];
        data++;
        size--;

        switch (which % 4) {
        case 0: {
                CriuTree *t = NULL;
                if (criu_pstree_parse(data, size, &t) >= 0) {
                        FILE *f = fopen("/dev/null", "we");
                        if (f) {
                                (void)criu_tree_print(t, f, NULL);
                                fclose(f);
                        }
                        criu_tree_free(t);
                }
                break;
        }
        case 1: {
                char *comm = NULL;
                if (criu_core_parse_comm(data, size, &comm) >= 0)
                        free(comm);
                break;
        }
        case 2: {
                CriuDumpStats st;
                (void)criu_stats_parse(data, size, &st);
                break;
        }
        default: {
                CriuInventory inv;
                (void)criu_inventory_parse(data, size, &inv);
                break;
        }
        }
        return 0;
}
