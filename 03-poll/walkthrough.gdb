# walkthrough.gdb - 03-poll: a guided tour. Start with: make gdb M=03
set pagination off
set print pretty on
handle SIGPIPE nostop noprint pass
handle SIGTERM nostop print pass
handle SIGINT nostop print pass
break on_accept
commands
  silent
  echo \n[tour 1] on_accept: ppoll() set POLLIN in slot 0, the listening socket\n
  print opts.max_clients
  print nslots
  print slots_cap
  print pfds[0]
  if $tour_batch
    continue
  end
end
break conn_open
commands
  silent
  echo \n[tour 2] conn_open: a new client gets the slot at the end of the array\n
  print fd
  print peer
  print nslots
  if $tour_batch
    continue
  end
end
break on_readable
commands
  silent
  echo \n[tour 3] on_readable: its slot has POLLIN in revents; recv() will not block\n
  print c->slot
  print pfds[c->slot]
  print/x pfds[c->slot].revents
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
  print/x pfds[c->slot].events
  if $tour_batch
    continue
  end
end
break conn_close
commands
  silent
  echo \n[tour 5] conn_close: the last slot moves into this one; the scan looks at it again\n
  print *c
  print nslots
  print pfds[0]@nslots
  if $tour_batch
    continue
  end
end
break shutdown_all
commands
  silent
  echo \n[tour 6] shutdown_all: SIGTERM interrupted ppoll(); close what is left\n
  print stats
  print nslots
  if $tour_batch
    continue
  end
end
echo Tour loaded. Type "run", then connect: nc 127.0.0.1 9003\n
