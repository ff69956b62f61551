# walkthrough.gdb - 05-signal-driven: a guided tour. Start with: make gdb M=05
set pagination off
set print pretty on
handle SIGPIPE nostop noprint pass
handle SIGTERM nostop print pass
handle SIGINT nostop print pass
# The server's messages. gdb only hears of a signal the kernel is about to
# *deliver* (run a handler or the default action); these are blocked and
# taken by sigwaitinfo(), so gdb never sees them and these lines change
# nothing - until someone unblocks one (see the README's gdb tour): then
# gdb would stop at every socket event (SIG35 = SIGRTMIN + 1) without them.
# SIG36 (SIGRTMIN + 2) is the idle timer's.
handle SIGIO nostop noprint pass
handle SIG35 nostop noprint pass
handle SIG36 nostop noprint pass
handle SIGALRM nostop noprint pass

break on_message
commands
  silent
  echo \n[tour 1] on_message: sigwaitinfo() returned a message (GetMessage); si_fd is wParam, si_band the event\n
  print si->si_signo
  print si->si_fd
  print/x si->si_band
  print si->si_code
  if $tour_batch
    continue
  end
end

break on_accept
commands
  silent
  echo \n[tour 2] on_accept: si_fd was the listening socket: FD_ACCEPT. Accept until EAGAIN\n
  print listen_fd
  print backlog_waiting
  print accept_paused_until
  if $tour_batch
    continue
  end
end

break conn_open
commands
  silent
  echo \n[tour 3] conn_open: a new client; async_select() arms it (WSAAsyncSelect), then one read\n
  print fd
  print peer
  print io_signal
  if $tour_batch
    continue
  end
end

break on_readable
commands
  silent
  echo \n[tour 4] on_readable: FD_READ - recv until EAGAIN (the first visit may find nothing yet)\n
  print *c
  if $tour_batch
    continue
  end
end

break on_writable
commands
  silent
  echo \n[tour 5] on_writable: FD_WRITE - send the backlog back\n
  print c->echo.len
  if c->echo.len > 0
    print c->echo.data[0]@c->echo.len
  end
  print c->peer_done
  if $tour_batch
    continue
  end
end

break conn_close
commands
  silent
  echo \n[tour 6] conn_close: O_ASYNC off (WSAAsyncSelect(s, hwnd, 0, 0)), then close\n
  print c->fd
  print c->peer
  print stats
  if $tour_batch
    continue
  end
end

break on_stop
commands
  silent
  echo \n[tour 7] on_stop: SIGTERM was one more message, taken by sigwaitinfo()\n
  print si->si_signo
  print si->si_pid
  print stats.current
  if $tour_batch
    continue
  end
end

break shutdown_all
commands
  silent
  echo \n[tour 8] shutdown_all: close the clients left, then the table\n
  print stats
  print clients
  if $tour_batch
    continue
  end
end

# The idle timer [S8] is a stop to set by hand: the runner's batch tour uses
# the default --idle-timeout of 300 s and would never reach it. Start with
# make gdb M=05 ARGS="--idle-timeout 5", then: break close_idle (README).

echo Tour loaded. Type "run", then in another terminal: nc 127.0.0.1 9005\n
echo (Ctrl-C does not reach gdb here: see the README's gdb tour.)\n
