/* sig_win32.c - sig.h for the Win32 twins: the stop request arrives as a
 * console control event (Ctrl-C; Wine turns SIGINT into one). */
#include "sig.h"

#include <stdatomic.h>
#include <windows.h>

/* Set by the control handler's thread, read by the server's threads. */
static atomic_int stop_flag;
/* Set once before sig_catch_stop(), then only read. */
static void (*wake_fn)(void *arg);
static void *wake_arg;

/* Windows calls this on a new thread of its own for each control event.
 * Returning TRUE says "handled": the process is not ended, the server
 * shuts down by itself. */
static BOOL WINAPI on_console_control(DWORD event)
{
    switch (event) {
    case CTRL_C_EVENT:
    case CTRL_BREAK_EVENT:
    case CTRL_CLOSE_EVENT:
        atomic_store(&stop_flag, 1);
        if (wake_fn != NULL)
            wake_fn(wake_arg);
        return TRUE;
    default:
        return FALSE;  /* log-off, shut-down: the default handling */
    }
}

/* Wine's SIGTERM ends a process without running any handler. */
const char sig_stop_words[] = "Ctrl-C (SIGINT under Wine)";

int sig_ignore_pipe(void) { return 0; }

int sig_catch_stop(void)
{
    return SetConsoleCtrlHandler(on_console_control, TRUE) ? 0 : -1;
}

void sig_on_stop(void (*wake)(void *arg), void *arg)
{
    wake_fn = wake;
    wake_arg = arg;
}

bool sig_stop_requested(void) { return atomic_load(&stop_flag) != 0; }

void sig_request_stop(void) { atomic_store(&stop_flag, 1); }
