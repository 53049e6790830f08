/* Fuzzes telemetry_print (what `axion-agent top` runs on the stored sample) with arbitrary
 * bytes, in both output forms. */
#include <stdint.h>
#include <stdio.h>

#include "agent/telemetry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *out = fopen("/dev/null", "we");
    if (!out)
        return 0;
    telemetry_print(data, size, out, false);
    telemetry_print(data, size, out, true);
    fclose(out);
    return 0;
}
