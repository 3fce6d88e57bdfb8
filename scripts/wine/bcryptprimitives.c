/* bcryptprimitives.dll for Wine 8.0, which lacks it: Rust's std (1.78 and
 * later) imports ProcessPrng from it for HashMap keys and the like. This
 * forwards to RtlGenRandom (SystemFunction036 in advapi32), which Wine has.
 * Built and installed into the test prefix by scripts/cross-test. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
