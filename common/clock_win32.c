/* clock_win32.c - clock.h for the Win32 twins. */
#include "clock.h"

#include <windows.h>

long long clock_ms(void)
{
    /* Milliseconds since boot, like CLOCK_MONOTONIC: never set back. The
     * 64-bit form, as the 32-bit GetTickCount wraps after 49.7 days. */
    return (long long)GetTickCount64();
}

void clock_pause_ms(int ms)
{
    Sleep((DWORD)ms);
}
