/* A stand-in bcryptprimitives.dll for Wine 8 (Debian 12), which lacks it: Rust's standard
 * library (1.78 and later) imports ProcessPrng from it, so no Rust program loads without it.
 * It forwards to RtlGenRandom (advapi32's SystemFunction036), which Wine has. Test-only: built
 * by `make platforms` next to the Windows binary under test, never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
