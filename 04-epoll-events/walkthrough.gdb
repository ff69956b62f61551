# walkthrough.gdb - 04-epoll-events: a guided tour. Start with: make gdb M=04
set pagination off
set print pretty on
handle SIGPIPE nostop noprint pass
handle SIGTERM nostop print pass
handle SIGINT nostop print pass
break on_accept
commands
  silent
  echo \n[tour 1] on_accept: epoll_wait() returned the listener's event (data.ptr == &listen_fd)\n
  print opts.max_clients
  print edge_triggered
  print listen_fd
  print epoll_fd
  print/x listen_armed
  if $tour_batch
    continue
  end
end
break conn_open
commands
  silent
  echo \n[tour 2] conn_open: EPOLL_CTL_ADD with data.ptr = the new struct conn\n
  print fd
  print peer
  if $tour_batch
    continue
  end
end
break on_event
commands
  silent
  echo \n[tour 3] on_event: one event of the batch; c is the data.ptr we registered\n
  print/x events
  print (events & EPOLLIN) != 0
  print (events & EPOLLOUT) != 0
  print *c
  if $tour_batch
    continue
  end
end
break on_readable
commands
  silent
  echo \n[tour 4] on_readable: recv() until EAGAIN, the budget, or a full backlog\n
  print c->fd
  print c->readable
  print/x c->armed
  if $tour_batch
    continue
  end
end
break on_writable
commands
  silent
  echo \n[tour 5] on_writable: the echo is sent back (len 0 after EOF)\n
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
  echo \n[tour 6] conn_close: EPOLL_CTL_DEL, close(); the struct waits in the graveyard\n
  print c->fd
  print c->dead
  print graveyard
  if $tour_batch
    continue
  end
end
break on_stop
commands
  silent
  echo \n[tour 7] on_stop: SIGTERM arrived as data on the signalfd\n
  print signal_fd
  print stats.current
  if $tour_batch
    continue
  end
end
break shutdown_all
commands
  silent
  echo \n[tour 8] shutdown_all: close the clients left, free the graveyard\n
  print stats
  print clients
  if $tour_batch
    continue
  end
end
echo Tour loaded. Type "run", then connect: nc 127.0.0.1 9004\n
