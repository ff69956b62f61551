# walkthrough.gdb - 02-select: a guided tour. Start with: make gdb M=02
set pagination off
set print pretty on
handle SIGPIPE nostop noprint pass
handle SIGTERM nostop print pass
handle SIGINT nostop print pass
break on_accept
commands
  silent
  echo \n[tour 1] on_accept: select() reported the listening socket readable\n
  print opts.max_clients
  print listen_fd
  echo The master set (clients we read from) and, one frame up, the copy select() returned:\n
  print/x read_master.fds_bits[0]
  up-silently
  print nfds
  print/x readfds.fds_bits[0]
  down-silently
  if $tour_batch
    continue
  end
end
break conn_open
commands
  silent
  echo \n[tour 2] conn_open: a new client; its bit goes into read_master\n
  print fd
  print peer
  print max_fd
  if $tour_batch
    continue
  end
end
break on_readable
commands
  silent
  echo \n[tour 3] on_readable: FD_ISSET(fd, readfds) was true; recv() will not block\n
  print c->fd
  print c->echo.len
  up-silently
  print/x readfds->fds_bits[0]
  print/x writefds->fds_bits[0]
  down-silently
  if $tour_batch
    continue
  end
end
break on_writable
commands
  silent
  echo \n[tour 4] on_writable: the echo is sent back (len 0 after EOF)\n
  print c->echo.len
  if c->echo.len > 0
    print c->echo.data[0]@c->echo.len
  end
  print c->peer_done
  print/x write_master.fds_bits[0]
  if $tour_batch
    continue
  end
end
break conn_close
commands
  silent
  echo \n[tour 5] conn_close: FD_CLR from the master sets, then close()\n
  print *c
  print/x read_master.fds_bits[0]
  print max_fd
  if $tour_batch
    continue
  end
end
break shutdown_all
commands
  silent
  echo \n[tour 6] shutdown_all: SIGTERM interrupted pselect(); close what is left\n
  print stats
  print max_fd
  if $tour_batch
    continue
  end
end
echo Tour loaded. Type "run", then connect: nc 127.0.0.1 9002\n
